#!/usr/bin/env python3
"""Writes ragshift's sample dataset: a bot registry in the format of
`aws dynamodb scan --output json` and the bots' generated documents (json, docx, pdf) in the
platform's S3 layout ({user_id}/{bot_id}/documents/{filename}) beside the hand-written ones
(see HAND_WRITTEN). Run from anywhere; output goes next to this file."""
import json, os, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ALICE = "3f1c9a52-7d0e-4b8a-9c61-2e5f7a8b9c01"
BINH = "8a2b4c6d-1e3f-4a5b-8c7d-9e0f1a2b3c4d"
BOTS = {
    "handbook": (ALICE, "01JD8Q3R4S5T6V7W8X9Y0Z1A2B"),
    "support_vi": (ALICE, "01JD8Q3R4S5T6V7W8X9Y0Z1A2C"),
    "releases": (BINH, "01JD8Q3R4S5T6V7W8X9Y0Z1A2D"),
    "empty": (BINH, "01JD8Q3R4S5T6V7W8X9Y0Z1A2E"),
    "legacy": (BINH, "01JD8Q3R4S5T6V7W8X9Y0Z1A2F"),
}

def doc_path(bot, name):
    user, bot_id = BOTS[bot]
    p = os.path.join(HERE, "documents", user, bot_id, "documents", name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p

# The hand-written documents (handbook.md, faq.txt, pricing.csv, huong-dan.md,
# chinh-sach-bao-hanh.html) are kept as they are under documents/: they are their own source,
# and this script only checks that they are there. It writes what is generated from data here:
# the registry, releases.json, the .docx and the .pdf.
HAND_WRITTEN = {
    "handbook": ["handbook.md", "faq.txt", "pricing.csv"],
    "support_vi": ["huong-dan.md", "chinh-sach-bao-hanh.html"],
}

def check_hand_written():
    missing = [doc_path(bot, name) for bot, names in HAND_WRITTEN.items() for name in names
               if not os.path.isfile(doc_path(bot, name))]
    if missing:
        raise SystemExit("missing hand-written documents (restore them from git): " + ", ".join(missing))

RELEASES = {
    "product": "Northwind Cloud",
    "releases": [
        {"version": "3.2.0", "date": "2026-09-14", "notes": "Workspaces can now choose their data region at creation. Exports include attachments. The API gains a bulk endpoint for tasks."},
        {"version": "3.1.0", "date": "2026-06-02", "notes": "Single sign-on supports SCIM provisioning. Trash retention is configurable between seven and ninety days on Business plans."},
        {"version": "3.0.0", "date": "2026-03-20", "notes": "New editor with real-time collaboration. Legacy API version 1 is removed; use version 2."},
    ],
}

def write_docx(bot, name, paragraphs):
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{p}</w:t></w:r></w:p>' for p in paragraphs
    )
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f'<w:body>{body}</w:body></w:document>')
    types = ('<?xml version="1.0" encoding="UTF-8"?>'
             '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
             '</Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
            '</Relationships>')
    with zipfile.ZipFile(doc_path(bot, name), "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in (("[Content_Types].xml", types), ("_rels/.rels", rels), ("word/document.xml", doc)):
            info = zipfile.ZipInfo(n, date_time=(2026, 1, 1, 0, 0, 0))
            z.writestr(info, data)

def write_pdf(bot, name, lines):
    text = "BT /F1 11 Tf 72 760 Td 14 TL " + " ".join(
        "(" + l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for l in lines
    ) + " ET"
    objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objs)+1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs)+1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    with open(doc_path(bot, name), "wb") as f:
        f.write(out)

def s(v): return {"S": v}
def n(v): return {"N": str(v)}
def l(vs): return {"L": [s(x) for x in vs]}

def bot_item(key, title, files=(), urls=(), sitemaps=(), params=True, status="SUCCEEDED"):
    user, bot_id = BOTS[key]
    item = {
        "PK": s(user), "SK": s(f"{user}#BOT#{bot_id}"), "Title": s(title),
        "Description": s(f"Sample bot: {title}"), "CreateTime": n(1767225600000),
        "LastBotUsed": n(1767225600000), "IsPinned": {"BOOL": False},
        "Instruction": s("Answer from the documents."),
        "Knowledge": {"M": {"source_urls": l(urls), "sitemap_urls": l(sitemaps), "filenames": l(files)}},
        "SyncStatus": s(status), "SyncStatusReason": s(""), "LastExecId": s(""),
    }
    if params:
        item["EmbeddingParams"] = {"M": {"chunk_size": n(1000), "chunk_overlap": n(200), "enable_partition_pdf": {"BOOL": False}}}
    return item

def main():
    check_hand_written()
    with open(doc_path("releases", "releases.json"), "w", encoding="utf-8") as f:
        json.dump(RELEASES, f, indent=2)
    write_docx("releases", "onboarding.docx", [
        "Onboarding checklist for new Northwind Cloud workspaces.",
        "First, invite the members of your team and assign at least one second owner so that access is never lost.",
        "Second, connect single sign-on if your company uses an identity provider, and enable SCIM to keep members in sync.",
        "Third, import existing projects from CSV or from another tool using the import wizard under Settings > Import.",
        "Hướng dẫn nhanh: mời thành viên, kết nối đăng nhập một lần, rồi nhập dự án từ tệp CSV.",
    ])
    write_pdf("legacy", "security-overview.pdf", [
        "Security overview",
        "All data is encrypted in transit with TLS 1.2 or later and at rest with AES-256.",
        "Access to production systems requires hardware security keys and is logged.",
        "Backups are taken every hour and kept for thirty days in a second region.",
        "Vulnerabilities can be reported to the security team; we answer within two business days.",
    ])
    user_b, bot_rel = BOTS["releases"]
    items = [
        bot_item("handbook", "Northwind handbook", files=HAND_WRITTEN["handbook"]),
        bot_item("support_vi", "Hỗ trợ khách hàng", files=HAND_WRITTEN["support_vi"]),
        bot_item("releases", "Release notes", files=["releases.json", "onboarding.docx"]),
        bot_item("empty", "Chit-chat bot (no knowledge)"),
        # An older item without EmbeddingParams: the platform's defaults (1000/200/false) apply.
        bot_item("legacy", "Security FAQ (legacy item)", files=["security-overview.pdf"], params=False, status="FAILED"),
        # An alias (someone pinned a public bot) and a conversation: never migrated.
        {"PK": s(ALICE), "SK": s(f"{ALICE}#BOT_ALIAS#{bot_rel}"), "Title": s("Release notes"),
         "OriginalBotId": s(bot_rel), "SyncStatus": s("SUCCEEDED"), "CreateTime": n(1767225600000)},
        {"PK": s(ALICE), "SK": s(f"{ALICE}#CONV#01JD8Q9ZZZZZZZZZZZZZZZZZZZ"), "Title": s("Billing question"),
         "TotalPrice": n("0.0012"), "CreateTime": n(1767225600000)},
    ]
    with open(os.path.join(HERE, "bots.json"), "w", encoding="utf-8") as f:
        json.dump({"Items": items, "Count": len(items), "ScannedCount": len(items), "ConsumedCapacity": None}, f, indent=2, ensure_ascii=False)

if __name__ == "__main__":
    main()
