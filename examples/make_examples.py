#!/usr/bin/env python3
"""Writes ragshift's sample dataset: a bot registry in the format of
`aws dynamodb scan --output json` and the bots' documents in the platform's S3 layout
({user_id}/{bot_id}/documents/{filename}). Run from anywhere; output goes next to this file."""
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

def write(bot, name, text):
    with open(doc_path(bot, name), "w", encoding="utf-8") as f:
        f.write(text)

HANDBOOK = """# Northwind Cloud handbook

## Accounts and sign-in

Every workspace has one owner and any number of members. Owners invite members by e-mail from Settings > People. An invitation expires after seven days; owners can resend it at any time.

Sign-in uses single sign-on when the workspace has it configured, and e-mail with a one-time code otherwise. Passwords are never stored. If a member loses access to their e-mail account, the owner can change the member's address from Settings > People.


## Billing

Workspaces are billed monthly per active member. A member is active when they sign in at least once during the billing period. Invoices are sent on the first day of each month and can be paid by card or bank transfer.

Downgrading to the free plan keeps all data but disables integrations and limits history to ninety days. Upgrading again restores everything immediately.


## Data retention and deletion

Deleted items stay in the trash for thirty days. After that they are removed from primary storage and, within a further thirty days, from backups. Owners can export a full copy of the workspace as JSON from Settings > Export at any time.

Closing a workspace deletes it after a grace period of fourteen days, during which the owner can reopen it.


## Support

Support answers within one business day on paid plans. Urgent incidents affecting many users are handled around the clock; check the status page first, then contact support with the workspace id and the time the problem started.
"""

FAQ = """Frequently asked questions

How do I reset my sign-in code? You don't need to: every code is single-use and a new one is sent each time you sign in. If codes don't arrive, check the spam folder and make sure the sender domain is allowed.

Can I move a project to another workspace? Yes. Open the project, choose Move, and pick a workspace where you are an owner. Members of the old workspace lose access unless they are also members of the new one.

Is there an API? Yes. Create a token under Settings > API. Tokens inherit the permissions of the member who created them and can be revoked at any time.

Which regions host my data? Workspaces created before 2024 are hosted in Frankfurt. Newer workspaces choose Frankfurt, Virginia or Singapore at creation; moving between regions is done by support on request.
"""

PRICING = """plan,price_per_member_usd,history_days,integrations,support
Free,0,90,no,community
Team,8,unlimited,yes,business hours
Business,15,unlimited,yes,24/7 for incidents
Enterprise,contact sales,unlimited,yes,dedicated manager
"""

HUONG_DAN = """# Hướng dẫn sử dụng dịch vụ hỗ trợ khách hàng

## Đăng ký tài khoản

Khách hàng có thể đăng ký tài khoản bằng số điện thoại hoặc địa chỉ email. Sau khi đăng ký, hệ thống sẽ gửi mã xác nhận gồm sáu chữ số. Mã xác nhận có hiệu lực trong năm phút.

Nếu không nhận được mã, vui lòng kiểm tra hộp thư rác hoặc yêu cầu gửi lại mã sau sáu mươi giây.


## Đổi trả sản phẩm

Sản phẩm được đổi trả miễn phí trong vòng ba mươi ngày kể từ ngày nhận hàng, với điều kiện còn nguyên tem và hóa đơn. Khách hàng mang sản phẩm đến bất kỳ cửa hàng nào hoặc gửi qua đường bưu điện.

Tiền hoàn lại được chuyển về tài khoản ngân hàng trong vòng bảy ngày làm việc. Đối với đơn hàng thanh toán bằng thẻ tín dụng, thời gian hoàn tiền phụ thuộc vào ngân hàng phát hành thẻ.


## Liên hệ

Tổng đài hỗ trợ hoạt động từ tám giờ sáng đến mười giờ tối, tất cả các ngày trong tuần. Khách hàng cũng có thể gửi yêu cầu qua ứng dụng; yêu cầu sẽ được trả lời trong vòng hai mươi bốn giờ.
"""

CHINH_SACH = """<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>Chính sách bảo hành</title>
<style>body { font-family: sans-serif; }</style>
<script>window.analytics = { track: function () {} };</script></head>
<body>
<nav><a href="/">Trang chủ</a> | <a href="/san-pham">Sản phẩm</a> | <a href="/lien-he">Liên hệ</a></nav>
<main>
<h1>Chính sách bảo hành</h1>
<p>Tất cả sản phẩm điện tử được bảo hành mười hai tháng kể từ ngày mua. Bảo hành áp dụng cho lỗi kỹ thuật do nhà sản xuất, không áp dụng cho hư hỏng do va đập, vào nước hoặc tự ý sửa chữa.</p>
<p>Khi mang sản phẩm đi bảo hành, khách hàng cần xuất trình phiếu bảo hành hoặc hóa đơn mua hàng. Thời gian xử lý bảo hành thông thường là năm ngày làm việc.</p>
<h2>Bảo hành mở rộng</h2>
<p>Khách hàng có thể mua gói bảo hành mở rộng thêm hai mươi bốn tháng với chi phí bằng mười phần trăm giá trị sản phẩm.</p>
</main>
<footer>© Công ty Cổ phần Ví dụ. Mọi quyền được bảo lưu.</footer>
</body></html>
"""

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
    write("handbook", "handbook.md", HANDBOOK)
    write("handbook", "faq.txt", FAQ)
    write("handbook", "pricing.csv", PRICING)
    write("support_vi", "huong-dan.md", HUONG_DAN)
    write("support_vi", "chinh-sach-bao-hanh.html", CHINH_SACH)
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
        bot_item("handbook", "Northwind handbook", files=["handbook.md", "faq.txt", "pricing.csv"]),
        bot_item("support_vi", "Hỗ trợ khách hàng", files=["huong-dan.md", "chinh-sach-bao-hanh.html"]),
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
