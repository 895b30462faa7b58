// The rules editor: an error's link puts the cursor on its line; line numbers follow the text.
(function () {
  "use strict";
  var text = document.getElementById("text");
  var gutter = document.querySelector(".editor .gutter");
  if (!text || !gutter) return;
  function selectLine(n) {
    var lines = text.value.split("\n");
    var start = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) start += lines[i].length + 1;
    var end = start + (lines[n - 1] || "").length;
    text.focus();
    text.setSelectionRange(start, end);
    // The textarea is as tall as the text, so the page scrolls, not the textarea.
    var lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 20;
    var top = text.getBoundingClientRect().top + window.scrollY;
    window.scrollTo(0, Math.max(0, top + (n - 1) * lineHeight - window.innerHeight / 3));
  }
  document.querySelectorAll("a[data-line]").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      selectLine(parseInt(a.getAttribute("data-line"), 10));
    });
  });
  var shown = text.value.split("\n").length;
  text.addEventListener("input", function () {
    var count = text.value.split("\n").length;
    if (count === shown) return;
    shown = count;
    var numbers = [];
    for (var i = 1; i <= count; i++) numbers.push(i);
    gutter.textContent = numbers.join("\n") + "\n";
    text.rows = count + 1;
  });
})();
