//! What several of the binary's test files share: the documents their bots hold and a file
//! registry (the platform's `aws dynamodb scan` JSON) with a documents directory beside it.
//!
//! Each test file compiles this module on its own, so an item one file does not use is not
//! dead code.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};

/// An English help-centre page: three paragraphs.
pub const HANDBOOK: &str = "Deleted items stay in the trash for thirty days. After that they are removed from primary storage.\n\nInvoices are sent on the first day of each month and can be paid by card or bank transfer.\n\nSupport answers within one business day on paid plans.";
/// A short English FAQ: two paragraphs.
pub const FAQ: &str = "Can I move a project to another workspace? Yes, open the project and choose Move.\n\nIs there an API? Yes, create a token under Settings.";
/// A Vietnamese returns policy: two paragraphs.
pub const VI: &str = "Sản phẩm được đổi trả miễn phí trong vòng ba mươi ngày kể từ ngày nhận hàng.\n\nTiền hoàn lại được chuyển về tài khoản ngân hàng trong vòng bảy ngày làm việc.";

/// Writes `bots.json` (a DynamoDB-JSON export) in `dir`, one bot of `user` per entry of `bots`
/// (bot id, document file names, source URLs; chunks of 150 with an overlap of 30), and each
/// document under `docs/{user}/{bot}/documents/`: `handbook.md` holds [`HANDBOOK`], `faq.txt`
/// [`FAQ`], any other name [`VI`]; a name starting with `gone` is listed but not written.
pub fn write_file_registry(dir: &Path, user: &str, bots: &[(String, Vec<&str>, Vec<String>)]) {
    let items: Vec<Value> = bots
        .iter()
        .map(|(bot, files, urls)| {
            json!({
                "PK": {"S": user}, "SK": {"S": format!("{user}#BOT#{bot}")}, "Title": {"S": bot},
                "Knowledge": {"M": {
                    "source_urls": {"L": urls.iter().map(|u| json!({"S": u})).collect::<Vec<_>>()},
                    "sitemap_urls": {"L": []},
                    "filenames": {"L": files.iter().map(|f| json!({"S": f})).collect::<Vec<_>>()}}},
                "EmbeddingParams": {"M": {"chunk_size": {"N": "150"}, "chunk_overlap": {"N": "30"}}},
                "SyncStatus": {"S": "SUCCEEDED"}
            })
        })
        .collect();
    std::fs::write(dir.join("bots.json"), json!({ "Items": items }).to_string())
        .expect("write bots.json");
    for (bot, files, _) in bots {
        let d = dir.join("docs").join(user).join(bot).join("documents");
        std::fs::create_dir_all(&d).expect("create the documents directory");
        for f in files.iter().filter(|f| !f.starts_with("gone")) {
            let body = match *f {
                "handbook.md" => HANDBOOK,
                "faq.txt" => FAQ,
                _ => VI,
            };
            std::fs::write(d.join(f), body).expect("write a document");
        }
    }
}
