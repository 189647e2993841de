//! CSV cells for the exports clients open in a spreadsheet (the wallet statement, the merchant
//! settlement). Their text is partly written by other people — a transfer's note, a sender's
//! name, a merchant's order reference — and a spreadsheet runs a cell that starts like a
//! formula. So every text cell goes through [`text`]: a leading `=`, `+`, `-`, `@`, TAB or CR
//! gets a `'` before it (OWASP's CSV-injection advice), then RFC 4180 quoting. Numbers the
//! server writes itself (amounts, balances, a refund's negative net) are written as numbers,
//! unchanged, so they still add up in the spreadsheet.

use std::borrow::Cow;

/// What a spreadsheet may read as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell: defused, then quoted if it holds a comma, a quote or a line break.
pub fn text(value: &str) -> Cow<'_, str> {
    let defused: Cow<'_, str> = if value.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    };
    if defused.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", defused.replace('"', "\"\"")))
    } else {
        defused
    }
}

/// One line of cells, already made with [`text`] or numbers, joined and ended.
pub fn line<I, S>(cells: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = String::new();
    for (n, cell) in cells.into_iter().enumerate() {
        if n > 0 {
            line.push(',');
        }
        line.push_str(cell.as_ref());
    }
    line.push('\n');
    line
}

/// Whether the request asks for CSV (`Accept: text/csv`) rather than JSON.
pub fn wanted(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"))
}

/// Where a streamed export writes its lines.
pub type LineSender = tokio::sync::mpsc::Sender<Result<String, std::io::Error>>;

/// The lines `write` sends, as a response body stream: `write` runs in a task of its own (so a
/// long export is read from the database while it is sent, in bounded memory) and stops when
/// the client has gone (a send fails). Should it fail, the body ends with an error, so the
/// client sees a cut download, never a short file that looks whole.
pub fn streamed<F, Fut>(
    what: &'static str,
    write: F,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>>
where
    F: FnOnce(LineSender) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send,
{
    let (lines, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        if let Err(error) = write(lines.clone()).await {
            tracing::error!(%error, what, "a streamed export failed");
            let _ = lines
                .send(Err(std::io::Error::other(format!("{what} interrupted"))))
                .await;
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|line| (line, receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_that_starts_like_a_formula_gets_a_quote_mark() {
        assert_eq!(
            text("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("-1"), "'-1");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("\tcmd"), "'\tcmd");
        assert_eq!(text("\r=1"), "\"'\r=1\"");
    }

    #[test]
    fn ordinary_text_is_left_alone_or_quoted() {
        assert_eq!(text("Bún bò Huế"), "Bún bò Huế");
        assert_eq!(text("a = b"), "a = b");
        assert_eq!(text(""), "");
        assert_eq!(text("a,b"), "\"a,b\"");
        assert_eq!(text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn a_line_joins_its_cells() {
        assert_eq!(line(["a", "-5000", &*text("=x")]), "a,-5000,'=x\n");
        assert_eq!(line(Vec::<String>::new()), "\n");
    }
}
