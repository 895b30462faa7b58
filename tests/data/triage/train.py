"""Learn bot/data/urgency.json from the tuning part of the triage corpus (never the test part).

    python3 tests/data/triage/train.py [--misses] [--situations]

Reads tune.jsonl and the older corpora (tests/data/triage-*.jsonl), all tuning data. Fits a
logistic regression (emergency now, or not) and a softmax over the [[emergency]] categories on
each message's word stems and pairs of stems (bot/urgency.py says which), with numpy and scipy,
which are needed here only: the server reads the weights as plain numbers.

The thresholds (high: an emergency; low: a possible one; veto: a danger word or phrase used in
an ordinary way) are chosen on out-of-fold probabilities (5 folds by a hash of the text), with
the shipped rules' phrases and danger words, to reach the recall target with the fewest false
alarms. Prints the cross-validated figures; writes the weights. `--misses` also lists the tuning
part's out-of-fold misses and false alarms; `--situations` the English recall per situation,
out of fold and with each situation left out of training.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
from scipy import optimize, sparse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from bot.check import load  # noqa: E402
from bot.danger import danger, signs  # noqa: E402
from bot.language import detect_language  # noqa: E402
from bot.urgency import WEIGHTS, features, signals  # noqa: E402
from bot.wording import prepare  # noqa: E402

OLD_KINDS = {"danger": "danger-to-life", "child": "child-at-risk", "missing": "missing-person",
             "vulnerable": "vulnerable-person"}  # fmt: skip
L2 = 3.0  # the regularisation, against learning the tuning messages by heart
# Each feature is first scaled by its log-count ratio (how much likelier it is in emergencies
# than in other messages, with ALPHA added to each count), and the regression learns on top of
# that ("NBSVM", Wang and Manning 2012): on this small corpus it leans on the words that tell
# emergencies apart and less on how the corpus's writers wrote. Out of fold, at 96.5% English
# recall, false alarms fell from 7.2% to 5.4% (L2 1 -> 3 chosen by the same cross-validation).
# The shipped weight of a feature is its ratio times its learned weight: the server scores as
# before.
ALPHA = 0.5
POSITIVE = 3.0  # a missed emergency costs more than a false alarm
MIN_COUNT = 2  # a feature seen once is the message, not the language
# Weights nearer 0 than this are not shipped: they hardly move a score, and each costs memory in
# every server (a third of them; the same decisions on all but a few tuning messages).
KEEP = 0.05


def rows() -> list[dict[str, object]]:
    situations = tomllib.loads((HERE / "situations.toml").read_text())["situation"]
    category = {s["id"]: s["category"] for s in situations}
    out = []
    for line in (HERE / "tune.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            row["category"] = category.get(row.get("situation") or "") if row["emergency"] else None
            out.append(row)
    for path in sorted((ROOT / "tests" / "data").glob("triage-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["lang"] = "en"
                kind = row.get("kind")
                row["category"] = OLD_KINDS.get(kind, kind) if row["emergency"] else None
                out.append(row)
    return out


def welsh(text: str) -> bool:
    """As the Welsh example's triage reads it (an English-only body reads every message as
    English)."""
    return detect_language(text, ("cy", "en")) == "cy"


def fold(text: str, k: int = 5) -> int:
    return int(hashlib.sha256(("fold" + text).encode()).hexdigest()[:8], 16) % k


def matrix(docs: list[list[str]], vocab: dict[str, int]) -> sparse.csr_matrix:
    r, c = [], []
    for i, fs in enumerate(docs):
        for f in set(fs):
            if f in vocab:
                r.append(i)
                c.append(vocab[f])
    return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(docs), len(vocab)))


def fit_binary(x: sparse.csr_matrix, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The weights (log-count ratio times learned weight, one per column) and the bias."""
    p = ALPHA + np.asarray(x[y == 1].sum(axis=0)).ravel()
    q = ALPHA + np.asarray(x[y == 0].sum(axis=0)).ravel()
    ratio = np.log((p / p.sum()) / (q / q.sum()))
    w, b = fit_logistic(x @ sparse.diags(ratio), y)
    return ratio * w, b


def fit_logistic(x: sparse.csr_matrix, y: np.ndarray) -> tuple[np.ndarray, float]:
    weight = np.where(y == 1, POSITIVE, 1.0)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        p = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
        eps = 1e-12
        value = -np.sum(weight * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
        value += L2 * 0.5 * np.dot(w, w)
        g = weight * (p - y)
        return value, np.append(x.T @ g + L2 * w, g.sum())

    theta = optimize.minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                              options={"maxiter": 500}).x  # fmt: skip
    return theta[:-1], float(theta[-1])


def fit_softmax(x: sparse.csr_matrix, y: np.ndarray, k: int) -> np.ndarray:
    onehot = np.eye(k)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta.reshape(x.shape[1], k)
        z = x @ w
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        value = -np.sum(onehot * np.log(p + 1e-12)) + L2 * 0.5 * np.sum(w * w)
        return value, (x.T @ (p - onehot) + L2 * w).ravel()

    theta = optimize.minimize(loss, np.zeros(x.shape[1] * k), jac=True, method="L-BFGS-B",
                              options={"maxiter": 300}).x  # fmt: skip
    return theta.reshape(x.shape[1], k)


def vocabulary(docs: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fs in docs:
        for f in set(fs):
            counts[f] = counts.get(f, 0) + 1
    kept = sorted(f for f, n in counts.items() if n >= MIN_COUNT)
    return {f: i for i, f in enumerate(kept)}


def rule_flags(data: list[dict[str, object]]) -> list[tuple[bool, bool, list[str]]]:
    """(a rules.toml phrase matched, a built-in danger word matched, signals), as the shipped
    rules say (English ones for English messages, the Welsh example's for Welsh)."""
    out = []
    triages = {lang: load(ROOT / path) for lang, path in
               (("en", "rules.toml"), ("cy", "examples/welsh-council/rules.toml"))}  # fmt: skip
    for row in data:
        triage = triages[str(row.get("lang", "en"))]
        prepared = prepare(str(row["text"]))
        match = triage.emergencies.match(triage.group.firsts(prepared)[0])
        found = None if match else danger(prepared)  # as Matcher.decide does
        name = None if match is None else match.category.name
        # as Matcher.decide: only certain danger words stand with a phrase; possible ones are
        # features, and the weights decide
        certain = found is not None and found[2]
        out.append((match is not None, certain, signals(name, found, signs(prepared))))
    return out


def decide(p: float, rule: bool, veto: float, low: float) -> bool:
    """Whether the reply leads with the emergency line (an emergency, or a possible one): a
    phrase or danger word counts unless the weights read the message as ordinary (below veto);
    otherwise the weights alone, at or above low."""
    return p >= veto if rule else p >= low


# What each language aims at (the targets): recall, with emergency and possible
# emergency together; false alarms of certain emergencies.
# A possible emergency is a false alarm too when the message is ordinary (it leads with the
# emergency line, and alerts the team), so the band stops at a cap of such false alarms.
TARGETS = {"en": (0.99, 0.02), "cy": (0.97, 0.03)}
CAP = {"en": 0.10, "cy": 0.20}
# English: the recall, out of fold, below which veto and low are not raised to save false
# alarms; they are chosen together for the fewest false alarms at this recall or more (the
# first model reached 96.8% out of fold with 9.8% false alarms, and shipped at 96.5%; with the
# scaled weights and the larger corpus, 97% costs about one false alarm in 100 more than
# 96.5%, and the test part's recall came out below the cross-validated one before). Welsh
# (365 tuning messages) is too small to trade on: its thresholds are chosen by the recall
# target and the cap alone.
FLOOR = {"en": 0.97}
VETOES = (0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def choose(probs: np.ndarray, y: np.ndarray, rule: np.ndarray, lang: str) -> dict[str, float]:
    """high: the lowest threshold whose certain false alarms stay within the target; low: the
    highest whose recall reaches the target, unless false alarms with the possible ones then
    pass the cap (a possible emergency between low and high); veto: the highest that costs no
    recall."""
    recall_target, alarm_target = TARGETS[lang]
    grid = np.round(np.arange(0.02, 0.99, 0.01), 2)
    pos, neg = y == 1, y == 0
    veto = 0.0
    for v in (0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3):
        kept = (rule & (probs >= v))[pos].mean()
        if kept >= (rule & (probs >= 0.0))[pos].mean() - 0.002:
            veto = v
    high = next((float(t) for t in grid if ((rule & (probs >= max(veto, t))) |
                 (probs >= t))[neg].mean() <= alarm_target), 0.99)  # fmt: skip
    low = capped = 0.02
    for t in grid:
        flagged = np.where(rule, probs >= veto, probs >= t)
        if flagged[pos].mean() >= recall_target:
            low = float(t)
        if flagged[neg].mean() > CAP[lang]:
            capped = float(t) + 0.01
    low = min(max(low, capped), high)
    if lang in FLOOR:
        best = (2.0, veto, low)
        for v in VETOES:
            for t in grid:
                flagged = np.where(rule, probs >= v, probs >= t)
                alarms = float(flagged[neg].mean())
                if flagged[pos].mean() >= FLOOR[lang] and alarms < best[0]:
                    best = (alarms, v, float(t))
        _, veto, low = best
        low = min(low, high)
    return {"high": round(high, 2), "low": round(low, 2), "veto": veto}


def by_situation(
    data: list[dict[str, object]],
    docs: list[list[str]],
    y: np.ndarray,
    oof: np.ndarray,
    rule: np.ndarray,
    t: dict[str, float],
) -> None:
    """English recall per situation, out of fold, and with the situation left out of training
    altogether (how the weights do on a kind of emergency they never saw)."""
    situation = np.array([str(r.get("situation") or "") if r["emergency"] else "" for r in data])
    english = np.array([r.get("lang", "en") == "en" for r in data])
    print("English recall per situation: out of fold / left out of training")
    for s in sorted(set(situation[english]) - {""}):
        held = (situation == s) & english
        train = situation != s
        vocab = vocabulary([d for d, k in zip(docs, train, strict=True) if k])
        w, b = fit_binary(matrix([d for d, k in zip(docs, train, strict=True) if k], vocab),
                          y[train])  # fmt: skip
        z = matrix([d for d, h in zip(docs, held, strict=True) if h], vocab) @ w + b
        left_out = 1 / (1 + np.exp(-z))
        rules = rule[held]
        folded = np.mean(
            [decide(p, r, t["veto"], t["low"]) for p, r in zip(oof[held], rules, strict=True)]
        )
        unseen = np.mean(
            [decide(p, r, t["veto"], t["low"]) for p, r in zip(left_out, rules, strict=True)]
        )
        print(f"  {s:22} {held.sum():4}  {folded:6.1%}  {unseen:6.1%}")


def main() -> int:
    data = rows()
    flags = rule_flags(data)
    docs = [features(prepare(str(r["text"])), f[2], welsh(str(r["text"])))
            for r, f in zip(data, flags, strict=True)]  # fmt: skip
    y = np.array([1 if r["emergency"] else 0 for r in data])
    folds = np.array([fold(str(r["text"])) for r in data])
    oof = np.zeros(len(data))
    for k in range(5):
        train, held = folds != k, folds == k
        vocab = vocabulary([d for d, t in zip(docs, train, strict=True) if t])
        w, b = fit_binary(
            matrix([d for d, t in zip(docs, train, strict=True) if t], vocab), y[train]
        )
        z = matrix([d for d, h in zip(docs, held, strict=True) if h], vocab) @ w + b
        oof[held] = 1 / (1 + np.exp(-z))
    rule = np.array([a or b for a, b, _ in flags])
    thresholds = {}
    for lang in ("en", "cy"):
        m = np.array([r.get("lang", "en") == lang for r in data])
        t = thresholds[lang] = choose(oof[m], y[m], rule[m], lang)
        certain = np.where(rule[m], oof[m] >= t["veto"], oof[m] >= t["high"])  # as decide()
        flagged = np.where(rule[m], oof[m] >= t["veto"], oof[m] >= t["low"])
        ym = y[m]
        if "--misses" in sys.argv:  # the tuning part's out-of-fold errors (never the test part)
            for i in np.flatnonzero(m):
                hit = decide(oof[i], bool(rule[i]), t["veto"], t["low"])
                if hit != bool(y[i]):
                    what = "missed" if y[i] else "alarm"
                    print(
                        f"  {what} {oof[i]:.2f} rule={rule[i]:d} [{data[i].get('situation')}]"
                        f" {data[i]['text']}"
                    )
        print(f"out of fold, {lang} ({m.sum()} messages), thresholds {t}: recall"
              f" {flagged[ym == 1].mean():.1%} (certain {certain[ym == 1].mean():.1%}); false"
              f" alarms {certain[ym == 0].mean():.1%} certain,"
              f" {flagged[ym == 0].mean():.1%} with the possible ones")  # fmt: skip
    if "--situations" in sys.argv:
        by_situation(data, docs, y, oof, rule, thresholds["en"])

    vocab = vocabulary(docs)
    x = matrix(docs, vocab)
    w, b = fit_binary(x, y)
    names = sorted({str(r["category"]) for r in data if r["category"]})
    index = {n: i for i, n in enumerate(names)}
    urgent = [i for i, r in enumerate(data) if r["category"]]
    cw = fit_softmax(x[urgent], np.array([index[str(data[i]["category"])] for i in urgent]),
                     len(names))  # fmt: skip
    inverse = {i: f for f, i in vocab.items()}
    weights = {inverse[i]: round(float(v), 3) for i, v in enumerate(w) if abs(v) >= KEEP}
    by_category = {  # sparse, "category:weight ..." for the weights that count: a string a row
        # is a fraction of the memory of lists of numbers while the server reads the file
        inverse[i]: " ".join(f"{k}:{round(float(v), 2):g}" for k, v in enumerate(row)
                             if abs(round(v, 2)) >= 0.05)
        for i, row in enumerate(cw)
        if np.abs(row).max() >= 0.1
    }  # fmt: skip
    WEIGHTS.write_text(
        json.dumps(
            {"bias": round(b, 3), "thresholds": thresholds, "categories": names, "weights": weights,
             "by_category": by_category},
            ensure_ascii=False, sort_keys=True, separators=(",", ":"),
        ) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    print(f"wrote {WEIGHTS}: {len(weights)} weights, {len(by_category)} category rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
