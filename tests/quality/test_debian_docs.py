"""quality_debian_docs: hack/datasets/debian_docs.py on small HTML and roff pages written here -
prose kept one paragraph per document, code and tables dropped, roff escapes and fonts stripped,
untranslated (English) paragraphs left out of the French corpus, repeats kept once."""
import gzip
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hack", "datasets"))
import debian_docs  # noqa: E402

HTML = """<html><head><title>Guide</title><style>p { color: red }</style></head><body>
<h2>1.2. Installer des paquets</h2>
<p>Le gestionnaire de paquets <code>apt</code> installe les logiciels et leurs dépendances.</p>
<pre>apt install paquet avec des options</pre>
<ul><li>Une liste des fichiers de la machine est tenue à jour par dpkg.</li></ul>
<p>This paragraph was never translated into French by anyone.</p>
<p>Ce programme est un logiciel libre et vous pouvez le redistribuer.</p>
</body></html>"""

ROFF = r""".\" un commentaire
.TH LS 1 "2022" "GNU" "Commandes"
.SH NOM
ls \- afficher le contenu d'un répertoire
.SH DESCRIPTION
Afficher les informations sur les \fBFICHIERS\fR (du répertoire courant par défaut).
Les entrées sont triées \fIalphabétiquement\fP si aucune option n'est donnée\&.
.PP
.B \-a
affiche aussi les entrées qui commencent par \(aq.\(aq dans la liste.
.nf
ls \-la /etc | less avec des options de la ligne de commande
.fi
.TS
tab(;);
l l.
colonne;une autre colonne de la table des options
.TE
Ce programme est un logiciel libre et vous pouvez le redistribuer.
"""

fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as d:
    os.makedirs(os.path.join(d, "pkg", "html", "fr-FR"))
    os.makedirs(os.path.join(d, "pkg", "html", "de-DE"))
    os.makedirs(os.path.join(d, "man", "usr", "share", "man", "fr", "man1"))
    with open(os.path.join(d, "pkg", "html", "fr-FR", "index.html"), "w") as f:
        f.write(HTML)
    with open(os.path.join(d, "pkg", "html", "de-DE", "index.html"), "w") as f:
        f.write("<p>Die Paketverwaltung installiert Programme und ihre Abhängigkeiten.</p>")
    with gzip.open(os.path.join(d, "man", "usr", "share", "man", "fr", "man1", "ls.1.gz"), "wt") as f:
        f.write(ROFF)
    docs = list(debian_docs.corpus(d, "fr"))
    for doc in docs:
        print("doc:", doc)
    check("Le gestionnaire de paquets apt installe les logiciels et leurs dépendances." in docs,
          "an HTML paragraph, inline code kept as a word")
    check(not any("apt install paquet" in x for x in docs), "<pre> left out")
    check("Une liste des fichiers de la machine est tenue à jour par dpkg." in docs, "a list item")
    check(not any("never translated" in x for x in docs), "an English paragraph left out of the French corpus")
    check(not any("Paketverwaltung" in x for x in docs), "another language's folder not read")
    check(not any("color" in x for x in docs), "<style> left out")
    check("Afficher les informations sur les FICHIERS (du répertoire courant par défaut). Les entrées sont "
          "triées alphabétiquement si aucune option n'est donnée." in docs, "roff text: fonts and \\& stripped, lines joined")
    check("-a affiche aussi les entrées qui commencent par '.' dans la liste." in docs,
          "a font macro's text, \\- and \\(aq")
    check(not any("ls -la" in x or "colonne" in x for x in docs), ".nf/.fi and tables left out")
    check(not any("commentaire" in x or "Commandes" in x for x in docs), "comments and .TH left out")
    check(sum(x == "Ce programme est un logiciel libre et vous pouvez le redistribuer." for x in docs) == 1,
          "a paragraph in both pages kept once")
    check(debian_docs.prose_in("en", "This paragraph was never translated.") and
          not debian_docs.prose_in("fr", "trop court"), "prose_in: English passes for en; short text never")

print(f"quality_debian_docs: {'ok' if not fails else f'{fails} failed'}")
sys.exit(1 if fails else 0)
