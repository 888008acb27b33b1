"""Prose from Debian documentation packages (unpacked with dpkg-deb -x) for a pretraining corpus:
the paragraphs, list items and table cells of their HTML manuals in one language, and the text of
their man pages (roff requests and escapes stripped). One document per paragraph; code blocks
(<pre>, .nf/.fi, tables) are left out, inline code stays (a word of its sentence).
hack/make-quality-data uses it for the French corpus.
  python3 debian_docs.py DIR LANG     prints the prose documents it finds, one per line (a check)
"""
import gzip
import html.parser
import os
import re
import sys

BLOCKS = {"p", "li", "dd", "dt", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "div", "title"}
SKIP = {"pre", "script", "style"}


class _Prose(html.parser.HTMLParser):
    """Text of block elements, each a document; text inside SKIP elements is dropped."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.docs, self.buf, self.skip = [], [], 0

    def flush(self):
        text = " ".join("".join(self.buf).split())
        if text:
            self.docs.append(text)
        self.buf = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIP:
            self.skip += 1
        elif tag in BLOCKS or tag == "br":
            self.flush()

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCKS:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)


def html_docs(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        p = _Prose()
        p.feed(f.read())
        p.close()
        p.flush()
    return p.docs


_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_NAMED = {"aq": "'", "dq": '"', "em": "\u2014", "en": "\u2013", "hy": "-", "lq": "\u201c", "rq": "\u201d",
          "oq": "\u2018", "cq": "\u2019", "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae", "mi": "-", "ti": "~",
          "ha": "^", "ga": "`", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "ba": "|", "Fo": "\u00ab", "Fc": "\u00bb"}
_INLINE_MACROS = {"B", "I", "BR", "RB", "IR", "RI", "BI", "IB", "SM", "SB", "UR", "MT", "SY", "OP"}
_BREAKS = {"SH", "SS", "PP", "P", "LP", "IP", "TP", "TQ", "HP", "sp", "br", "RS", "RE", "UE", "ME"}


def roff_text(line):
    """One roff text line without its escapes."""
    line = _FONT.sub("", line)
    line = re.sub(r"\\\[([A-Za-z]{2})\]|\\\(([A-Za-z]{2})",
                  lambda m: _NAMED.get(m.group(1) or m.group(2), ""), line)
    line = re.sub(r"\\\*(\[[^\]]*\]|\(..|.)", "", line)  # strings
    line = re.sub(r"\\[sS][+-]?\d+|\\[hvwlLxXzkoNHbD]'[^']*'", "", line)  # sizes, motions
    line = line.replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ").replace("\\~", " ")
    line = re.sub(r"\\[&|^%:cdu)/,!{}]", "", line)
    line = line.replace("\\\\", "\\")
    return re.sub(r"\\.", "", line)


def man_docs(path):
    """Paragraphs of a man page (gzip or plain roff): text lines and the text of font macros."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    docs, buf, nofill, table = [], [], False, False

    def flush():
        text = " ".join(" ".join(buf).split())
        if text:
            docs.append(text)
        buf.clear()
    for raw in lines:
        if raw.startswith((".", "'")):
            parts = raw[1:].strip().split(None, 1)
            req = parts[0] if parts else ""
            if req in ("nf", "EX"):
                flush()
                nofill = True
            elif req in ("fi", "EE"):
                nofill = False
            elif req == "TS":
                flush()
                table = True
            elif req == "TE":
                table = False
            elif req in _BREAKS:
                flush()
                if req in ("SH", "SS") and len(parts) > 1:  # a heading is its own document
                    docs.append(roff_text(parts[1].replace('"', "")).strip())
            elif req in _INLINE_MACROS and len(parts) > 1 and not (nofill or table):
                buf.append(roff_text(parts[1].replace('"', "")))
            continue
        if nofill or table:
            continue
        if not raw.strip():
            flush()
            continue
        buf.append(roff_text(raw))
    flush()
    return [d for d in docs if d]


# Function words that make up a good share of any French sentence and hardly any English one.
_FR_WORDS = set("le la les l un une des du de d et est sont en pour que qui dans par sur pas ne ou au aux ce "
                "cette ces il elle ils on se sa son ses leur avec être été peut plus si tout tous".split())


def prose_in(lang, text, min_words=5):
    """Whether a document is prose in lang: at least min_words words and, for French, function
    words making up a tenth of them (man pages are partly untranslated; that text is dropped)."""
    words = text.split()
    if len(words) < min_words:
        return False
    if lang != "fr":
        return True
    toks = re.findall(r"[a-zàâäçéèêëîïôöùûüÿœ]+", text.lower().replace("’", "'"))
    return sum(t in _FR_WORDS for t in toks) >= 0.1 * len(words)


def find_docs(root, lang):
    """The documents of every HTML page in a `lang` folder or named *.lang.html, and of every man
    page under man/lang/, below root: one list a page, in a stable order."""
    tag = re.compile(rf"(^|[/.\-_]){re.escape(lang)}([/.\-_]|$)", re.I)
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if name.endswith((".html", ".htm")) and tag.search(rel):
                yield html_docs(path)
            elif f"/man/{lang}/" in "/" + rel and re.search(r"\.\d\w*(\.gz)?$", name):
                yield man_docs(path)


def corpus(root, lang):
    """The prose documents of find_docs, each once (licence notices repeat across man pages)."""
    seen = set()
    for docs in find_docs(root, lang):
        for d in docs:
            if d not in seen and prose_in(lang, d):
                seen.add(d)
                yield d


if __name__ == "__main__":
    for doc in corpus(sys.argv[1], sys.argv[2]):
        print(doc)
