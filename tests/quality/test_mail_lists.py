"""quality_mail_lists: the mail/en set's labels and cleaning (hack/datasets/quality_data.py) on
e-mails written here - the list a message came through, read from its headers; what the list
software adds (subject tags, footers, sponsor blocks, also where a reply quotes them) and every
e-mail address dropped, what people wrote kept."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "hack", "datasets"))
import quality_data as q  # noqa: E402

ILUG = """From: Niall <niall@example.ie>
Sender: ilug-admin@linux.ie
List-Id: Irish Linux Users' Group <ilug.linux.ie>
Subject: Re: [ILUG] veritas backup on linux ?

> Does anyone run the backup agent on a Red Hat box?
> --
> Irish Linux Users' Group: ilug@linux.ie
> http://www.linux.ie/mailman/listinfo/ilug for (un)subscription information.
> List maintainer: listmaster@linux.ie

It works here with the tape drive on a SCSI card, mail me at niall@example.ie for details.

--
Irish Linux Users' Group: ilug@linux.ie
http://www.linux.ie/mailman/listinfo/ilug for (un)subscription information.
List maintainer: listmaster@linux.ie
"""

RAZOR = """From: someone@example.com
List-Id: <razor-users.example.sourceforge.net>
Subject: [Razor-users] Authentication Error

razor-check fails with an authentication error since this morning.
Its archives say nothing about it.

-------------------------------------------------------
This sf.net email is sponsored by:ThinkGeek
Welcome to geek heaven.
http://thinkgeek.com/sf
_______________________________________________
Razor-users mailing list
Razor-users@lists.sourceforge.net
https://lists.sourceforge.net/lists/listinfo/razor-users
"""

OTHER = """From: a@example.org
List-Id: <somewhere-else.example.org>
Subject: lunch

Lunch at noon?
"""

fails = []


def check(cond, what):
    if not cond:
        fails.append(what)
        print("FAIL:", what)


check(q.mailing_list(ILUG) == "ilug", "ILUG's List-Id gives ilug")
check(q.mailing_list(RAZOR) == "razor", "razor-users gives razor")
check(q.mailing_list(OTHER) is None, "a list outside MAIL_LISTS gives no label")
check(q.mailing_list("Subject: hi\n\nno headers of a list\n") is None, "no list headers: no label")

ilug = q.mail_text(ILUG, 200, q.without_list_marks)
razor = q.mail_text(RAZOR, 200, q.without_list_marks)
print(ilug)
print(razor)
for text, marks in ((ilug, ("[ILUG]", "Irish Linux Users' Group", "listinfo", "List maintainer", "@")),
                    (razor, ("[Razor-users]", "sponsored", "ThinkGeek", "thinkgeek.com", "Razor-users mailing list", "listinfo",
                             "@", "_____", "-----"))):
    for m in marks:
        check(m not in text, f"{m!r} dropped from {text[:40]!r}...")
check(ilug.startswith("Re: veritas backup on linux ? . "), "the subject, its tag dropped, leads the text")
check("Does anyone run the backup agent on a Red Hat box?" in ilug, "the quoted question is kept")
check("It works here with the tape drive on a SCSI card, mail me at for details." in ilug,
      "the reply is kept, the address dropped")
check(razor == "Authentication Error . razor-check fails with an authentication error since this morning. "
      "Its archives say nothing about it.", "the razor message is its subject and what was written")
check(q.mail_text(RAZOR, 4, q.without_list_marks) == "Authentication Error . razor-check", "cut at max_words")
print(f"{len(fails)} checks failed" if fails else "all checks passed")
sys.exit(1 if fails else 0)
