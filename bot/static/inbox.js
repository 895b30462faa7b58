// Live updates for the inbox: new and changed rows, and the open count, without a reload.
// The page works without this script; it only listens to /inbox/events (server-sent events).
(function () {
  "use strict";
  var table = document.getElementById("queue");
  var body = document.getElementById("rows");
  var count = document.getElementById("open-count");
  var live = document.getElementById("live");
  if (!table || !body || !window.EventSource) return;
  var title = document.title.replace(/^\(\d+\) /, "");

  function rowsOf(parent) {
    return Array.prototype.slice.call(parent.querySelectorAll("tr"));
  }

  function update(data) {
    var active = document.activeElement;
    var template = document.createElement("template");
    template.innerHTML = data.rows;
    var old = {};
    rowsOf(body).forEach(function (row) {
      if (row.dataset.reference) old[row.dataset.reference] = row;
    });
    var added = [];
    var next = rowsOf(template.content).map(function (row) {
      var ref = row.dataset.reference;
      var kept = ref && old[ref];
      if (kept && kept.outerHTML === row.outerHTML) return kept;
      if (ref && !kept) added.push(ref);
      return row;
    });
    body.replaceChildren.apply(body, next);
    if (active && active !== document.body && document.contains(active)) active.focus();
    count.textContent = data.open + (data.open === 1 ? " open message" : " open messages");
    document.title = "(" + data.open + ") " + title;
    if (added.length) {
      live.textContent = added.length === 1
        ? "1 new message: " + added[0] + "."
        : added.length + " new messages: " + added.join(", ") + ".";
    }
  }

  var source = new EventSource(table.dataset.events);
  source.addEventListener("inbox", function (event) {
    update(JSON.parse(event.data));
  });
  source.addEventListener("logged-out", function () {
    source.close();
    live.textContent = "Your session has ended. Refresh the page to log in again.";
  });
})();
