//! Safe rendering of article bodies.
//!
//! Bodies are stored exactly as the editor wrote them. Readers get them
//! through [`to_html`] or [`to_plain_text`], which understand a small,
//! well-defined markup and nothing else:
//!
//! | Markup                         | HTML                                  |
//! |--------------------------------|---------------------------------------|
//! | a blank line                   | ends a block                          |
//! | other lines                    | `<p>`; lines within it keep their `\n`|
//! | `# Title` / `## Title`         | `<h2>` / `<h3>` (the page owns `<h1>`)|
//! | `- item` (consecutive lines)   | `<ul><li>…</li></ul>`                 |
//! | `**bold**`                     | `<strong>`                            |
//! | `[text](https://…)`            | `<a href="…" rel="nofollow noopener noreferrer">` |
//!
//! Links are made only for `http://`, `https://` and `mailto:` targets
//! (case-insensitive, no control characters); any other link
//! (`javascript:`, `data:`, relative) shows its text without a link. A
//! target ends at the first `)` and may hold no whitespace, brackets or
//! parentheses (percent-encode them); otherwise the markup is shown as
//! written. Bold and links do not nest in themselves; links
//! may hold bold text. Unterminated markup (`**bold`, `[text](…`) is shown
//! as written.
//!
//! **Every** character of the author's text, link targets included, goes
//! through [`escape_html`], which escapes `&`, `<`, `>`, `"` and `'`, so no
//! markup, attribute or script of the author's reaches a reader; the only
//! tags in the output are the ones listed above, written by this module.
//!
//! The plain-text rendering (SMS and e-mail text parts, search documents)
//! drops the markers, keeps headings and list items on their own lines and
//! writes links as `text (url)`. It is **not** escaped and must never be put
//! into HTML.

use std::fmt::Write as _;

/// The longest link target made into a link.
pub const MAX_URL_LEN: usize = 2048;

/// The kinds of block in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Paragraph,
    List,
}

/// A line's kind.
enum Line<'a> {
    Blank,
    Heading(u8, &'a str),
    Item(&'a str),
    Text(&'a str),
}

fn classify(line: &str) -> Line<'_> {
    let line = line.trim_end_matches('\r');
    if line.trim().is_empty() {
        Line::Blank
    } else if let Some(rest) = line.strip_prefix("## ") {
        Line::Heading(3, rest.trim())
    } else if let Some(rest) = line.strip_prefix("# ") {
        Line::Heading(2, rest.trim())
    } else if let Some(rest) = line.strip_prefix("- ") {
        Line::Item(rest.trim())
    } else {
        Line::Text(line.trim())
    }
}

/// Appends `text` to `out` with `&`, `<`, `>`, `"` and `'` escaped, so it is
/// safe both as element content and within a double- or single-quoted
/// attribute.
pub fn escape_html_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_html_into(&mut out, text);
    out
}

/// Whether `url` may become a link: `http://`, `https://` or `mailto:`, and
/// no whitespace or control characters anywhere in it.
pub fn is_safe_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme_ok = (lower.starts_with("http://") && url.len() > 7)
        || (lower.starts_with("https://") && url.len() > 8)
        || (lower.starts_with("mailto:") && url.len() > 7);
    scheme_ok && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The output of inline markup: HTML or plain text.
trait Sink {
    fn text(&mut self, text: &str);
    fn bold_start(&mut self);
    fn bold_end(&mut self);
    fn link_start(&mut self, url: &str);
    fn link_end(&mut self, url: &str);
}

struct Html<'a>(&'a mut String);

impl Sink for Html<'_> {
    fn text(&mut self, text: &str) {
        escape_html_into(self.0, text);
    }
    fn bold_start(&mut self) {
        self.0.push_str("<strong>");
    }
    fn bold_end(&mut self) {
        self.0.push_str("</strong>");
    }
    fn link_start(&mut self, url: &str) {
        self.0.push_str("<a href=\"");
        escape_html_into(self.0, url);
        self.0.push_str("\" rel=\"nofollow noopener noreferrer\">");
    }
    fn link_end(&mut self, _url: &str) {
        self.0.push_str("</a>");
    }
}

struct Plain<'a>(&'a mut String);

impl Sink for Plain<'_> {
    fn text(&mut self, text: &str) {
        self.0.push_str(text);
    }
    fn bold_start(&mut self) {}
    fn bold_end(&mut self) {}
    fn link_start(&mut self, _url: &str) {}
    fn link_end(&mut self, url: &str) {
        let _ = write!(self.0, " ({url})");
    }
}

/// Renders inline markup of `s` into `sink`. `in_bold` / `in_link` forbid
/// nesting the same construct.
fn inline(s: &str, sink: &mut dyn Sink, in_bold: bool, in_link: bool) {
    let mut literal_from = 0;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if !in_bold && rest.starts_with("**") {
            if let Some(end) = rest[2..].find("**") {
                let inner = &rest[2..2 + end];
                if !inner.is_empty() {
                    sink.text(&s[literal_from..i]);
                    sink.bold_start();
                    inline(inner, sink, true, in_link);
                    sink.bold_end();
                    i += 2 + end + 2;
                    literal_from = i;
                    continue;
                }
            }
        } else if !in_link
            && rest.starts_with('[')
            && let Some((text, url, len)) = link_at(rest)
        {
            sink.text(&s[literal_from..i]);
            if is_safe_url(url) {
                sink.link_start(url);
                inline(text, sink, in_bold, true);
                sink.link_end(url);
            } else {
                inline(text, sink, in_bold, true);
            }
            i += len;
            literal_from = i;
            continue;
        }
        // Advance one character (bytes of a multi-byte char are skipped).
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    sink.text(&s[literal_from..]);
}

/// A `[text](url)` at the start of `s`: its text, its url and its length.
///
/// The text ends at the first `]` and may not hold `[`; the url ends at the
/// first `)` and may not hold whitespace, `[`, `]` or `(`, and is at most
/// [`MAX_URL_LEN`] bytes. Each scan stops at the next bracket, so rendering a
/// line stays linear in its length whatever brackets it holds.
fn link_at(s: &str) -> Option<(&str, &str, usize)> {
    let body = s.get(1..)?;
    let close = body.find(['[', ']'])?;
    let text = &body[..close];
    let after = &body[close..];
    if text.is_empty() || !after.starts_with("](") {
        return None;
    }
    let url_start = 1 + close + 2;
    let tail = &s[url_start..];
    let url_len = tail.find(|c: char| c == ')' || c == '(' || c == '[' || c == ']' || c.is_whitespace())?;
    if !tail[url_len..].starts_with(')') || url_len > MAX_URL_LEN {
        return None;
    }
    Some((text, &tail[..url_len], url_start + url_len + 1))
}

/// Walks the blocks of `body`, calling `emit` for each heading, item run
/// and paragraph.
fn blocks<'a>(body: &'a str, mut emit: impl FnMut(Event<'a>)) {
    let mut open: Option<Block> = None;
    let close = |open: &mut Option<Block>, emit: &mut dyn FnMut(Event<'a>)| {
        if let Some(block) = open.take() {
            emit(Event::End(block));
        }
    };
    for line in body.split('\n') {
        match classify(line) {
            Line::Blank => close(&mut open, &mut emit),
            Line::Heading(level, text) => {
                close(&mut open, &mut emit);
                emit(Event::Heading(level, text));
            }
            Line::Item(text) => {
                if open != Some(Block::List) {
                    close(&mut open, &mut emit);
                    emit(Event::Start(Block::List));
                    open = Some(Block::List);
                }
                emit(Event::Item(text));
            }
            Line::Text(text) => {
                if open == Some(Block::Paragraph) {
                    emit(Event::LineBreak);
                } else {
                    close(&mut open, &mut emit);
                    emit(Event::Start(Block::Paragraph));
                    open = Some(Block::Paragraph);
                }
                emit(Event::Text(text));
            }
        }
    }
    close(&mut open, &mut emit);
}

enum Event<'a> {
    Start(Block),
    End(Block),
    Heading(u8, &'a str),
    Item(&'a str),
    Text(&'a str),
    LineBreak,
}

/// Renders a body to HTML: see the [module documentation](self). Blocks are
/// separated by `\n`.
pub fn to_html(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + body.len() / 4 + 16);
    blocks(body, |event| match event {
        Event::Start(Block::Paragraph) => out.push_str("<p>"),
        Event::Start(Block::List) => out.push_str("<ul>\n"),
        Event::End(Block::Paragraph) => out.push_str("</p>\n"),
        Event::End(Block::List) => out.push_str("</ul>\n"),
        Event::Heading(level, text) => {
            let _ = write!(out, "<h{level}>");
            inline(text, &mut Html(&mut out), false, false);
            let _ = writeln!(out, "</h{level}>");
        }
        Event::Item(text) => {
            out.push_str("<li>");
            inline(text, &mut Html(&mut out), false, false);
            out.push_str("</li>\n");
        }
        Event::Text(text) => inline(text, &mut Html(&mut out), false, false),
        Event::LineBreak => out.push_str("<br>\n"),
    });
    out
}

/// Starts a new plain-text block.
fn separate(out: &mut String) {
    if !out.is_empty() {
        out.push_str("\n\n");
    }
}

/// Renders a body to plain text: see the [module documentation](self).
/// Blocks are separated by a blank line; the result has no trailing
/// newline. Not escaped: never put it into HTML.
pub fn to_plain_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut first_item = true;
    blocks(body, |event| match event {
        Event::Start(Block::Paragraph) => separate(&mut out),
        Event::Start(Block::List) => {
            separate(&mut out);
            first_item = true;
        }
        Event::End(_) => {}
        Event::Heading(_, text) => {
            separate(&mut out);
            inline(text, &mut Plain(&mut out), false, false);
        }
        Event::Item(text) => {
            if !first_item {
                out.push('\n');
            }
            first_item = false;
            out.push_str("- ");
            inline(text, &mut Plain(&mut out), false, false);
        }
        Event::Text(text) => inline(text, &mut Plain(&mut out), false, false),
        Event::LineBreak => out.push('\n'),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No author-supplied tag or attribute survives: the only `<` in the
    /// output start the tags this module writes.
    fn assert_only_our_tags(html: &str) {
        const OURS: [&str; 13] = [
            "<p>",
            "</p>",
            "<ul>",
            "</ul>",
            "<li>",
            "</li>",
            "<h2>",
            "</h2>",
            "<h3>",
            "</h3>",
            "<strong>",
            "</strong>",
            "<br>",
        ];
        let mut rest = html;
        while let Some(at) = rest.find('<') {
            rest = &rest[at..];
            if rest.starts_with("<a href=\"") {
                let end = rest.find('>').unwrap();
                let tag = &rest[..=end];
                assert!(tag.ends_with("\" rel=\"nofollow noopener noreferrer\">"), "{tag}");
                let url = &tag[9..tag.len() - 37];
                assert!(!url.contains('"') && !url.contains('<'), "{url}");
                rest = &rest[end + 1..];
            } else if rest.starts_with("</a>") {
                rest = &rest[4..];
            } else {
                let tag = OURS.iter().find(|t| rest.starts_with(**t));
                assert!(tag.is_some(), "unexpected tag at {rest:?} in {html:?}");
                rest = &rest[tag.unwrap().len()..];
            }
        }
    }

    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(
            escape_html(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape_html("Ștefan → ţară"), "Ștefan → ţară");
    }

    #[test]
    fn paragraphs_headings_and_lists() {
        let body = "# Asistență juridică\n\nPrimul paragraf\ncontinuă aici.\n\n- unu\n- doi\n\n## Detalii\nText.";
        assert_eq!(
            to_html(body),
            "<h2>Asistență juridică</h2>\n\
             <p>Primul paragraf<br>\ncontinuă aici.</p>\n\
             <ul>\n<li>unu</li>\n<li>doi</li>\n</ul>\n\
             <h3>Detalii</h3>\n\
             <p>Text.</p>\n"
        );
    }

    #[test]
    fn kinds_of_line_change_blocks_without_blank_lines() {
        assert_eq!(
            to_html("Intro\n- a\n- b\nAfter\r\n# H"),
            "<p>Intro</p>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n<p>After</p>\n<h2>H</h2>\n"
        );
        assert_eq!(to_html(""), "");
        assert_eq!(to_html("\n\n  \n"), "");
        // A marker without its space is text.
        assert_eq!(to_html("#hashtag\n-5 °C"), "<p>#hashtag<br>\n-5 °C</p>\n");
    }

    #[test]
    fn bold_and_links() {
        assert_eq!(
            to_html("Call **0800 800 800** or see [the guide](https://gov.md/ghid?a=1&b=2)."),
            "<p>Call <strong>0800 800 800</strong> or see \
             <a href=\"https://gov.md/ghid?a=1&amp;b=2\" rel=\"nofollow noopener noreferrer\">the guide</a>.</p>\n"
        );
        assert_eq!(
            to_html("[**Write** to us](mailto:info@example.md)"),
            "<p><a href=\"mailto:info@example.md\" rel=\"nofollow noopener noreferrer\"><strong>Write</strong> to us</a></p>\n"
        );
        assert_eq!(
            to_html("**see [here](HTTP://x.md)**"),
            "<p><strong>see <a href=\"HTTP://x.md\" rel=\"nofollow noopener noreferrer\">here</a></strong></p>\n"
        );
    }

    #[test]
    fn script_tags_are_text() {
        let html = to_html("<script>alert('x')</script>\n\n# <img src=x onerror=alert(1)>");
        assert_eq!(
            html,
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>\n\
             <h2>&lt;img src=x onerror=alert(1)&gt;</h2>\n"
        );
        assert_only_our_tags(&html);
    }

    #[test]
    fn dangerous_link_schemes_lose_their_link() {
        for url in [
            "javascript:alert(1",
            "JavaScript:alert(1",
            " javascript:alert(1",
            "data:text/html;base64,PHNjcmlwdD4",
            "vbscript:msgbox",
            "//evil.example",
            "/relative",
            "https://",
            "https://ok.md/\u{0}x",
            "http://a b",
            "java\nscript:alert(1",
        ] {
            let html = to_html(&format!("[click]({url})"));
            assert!(!html.contains("<a "), "{url:?} → {html}");
            assert_only_our_tags(&html);
        }
        assert_eq!(to_html("[click](javascript:void)"), "<p>click</p>\n");
        assert_eq!(to_html("[click](javascript:alert(1))"), "<p>[click](javascript:alert(1))</p>\n");
    }

    #[test]
    fn quotes_cannot_break_out_of_the_href() {
        let html = to_html(r#"[x](https://a.md/" onmouseover="alert(1)) [y](https://a.md/'><script>)"#);
        assert!(!html.contains("\" onmouseover"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&quot; onmouseover=&quot;alert(1"), "{html}");
        assert_only_our_tags(&html);
    }

    #[test]
    fn unterminated_and_nested_markup_is_shown_as_written() {
        assert_eq!(to_html("**bold"), "<p>**bold</p>\n");
        assert_eq!(to_html("a ** b"), "<p>a ** b</p>\n");
        assert_eq!(to_html("****"), "<p>****</p>\n");
        assert_eq!(to_html("[text](https://x.md"), "<p>[text](https://x.md</p>\n");
        assert_eq!(to_html("[text]"), "<p>[text]</p>\n");
        assert_eq!(to_html("[](https://x.md)"), "<p>[](https://x.md)</p>\n");
        assert_eq!(
            to_html("[[a](https://x.md)](https://y.md)"),
            "<p>[<a href=\"https://x.md\" rel=\"nofollow noopener noreferrer\">a</a>](https://y.md)</p>\n"
        );
        // Bold does not span lines.
        assert_eq!(to_html("**a\nb**"), "<p>**a<br>\nb**</p>\n");
        // Links in link text are not links.
        let html = to_html("[a [b](https://b.md) c](https://a.md)");
        assert_only_our_tags(&html);
        assert_eq!(html.matches("<a ").count(), 1, "{html}");
    }

    #[test]
    fn hostile_inputs_yield_only_our_tags() {
        let inputs = [
            "<<script>>",
            "**<b>**",
            "[<i>x</i>](https://x.md/<script>)",
            "- <li>\n- </ul><script>",
            "# </h2><script>alert(1)</script>",
            "\"'><svg onload=alert(1)>",
            "&lt;script&gt;",
            "[a](https://x.md)**[b](mailto:\"x\")**",
            "\u{202e}[x](https://x.md)",
            "ș**ț**ă[î](https://â.md)",
        ];
        for input in inputs {
            let html = to_html(input);
            assert_only_our_tags(&html);
            assert!(!html.contains("<script"), "{html}");
        }
        assert_eq!(to_html("&lt;"), "<p>&amp;lt;</p>\n");
    }

    #[test]
    fn plain_text_drops_markers_and_keeps_structure() {
        let body = "# Sănătate\n\nAsigurarea **medicală** în Italia.\nVezi [ghidul](https://gov.md/ghid).\n\n- CNAM\n- [Ambasada](javascript:x)\n\n## Contacte\n<b>nu</b>";
        assert_eq!(
            to_plain_text(body),
            "Sănătate\n\nAsigurarea medicală în Italia.\nVezi ghidul (https://gov.md/ghid).\n\n- CNAM\n- Ambasada\n\nContacte\n\n<b>nu</b>"
        );
        assert_eq!(to_plain_text(""), "");
        assert_eq!(to_plain_text("**x"), "**x");
    }

    #[test]
    fn large_bodies_render_in_linear_time() {
        let body = "**[x](".repeat(20_000);
        let html = to_html(&body);
        assert_only_our_tags(&html);
        let body = "- item **b** [l](https://x.md)\n".repeat(5_000);
        assert_eq!(to_html(&body).matches("<li>").count(), 5_000);
    }

    #[test]
    fn safe_urls() {
        assert!(is_safe_url("https://gov.md"));
        assert!(is_safe_url("HTTPS://gov.md"));
        assert!(is_safe_url("http://x"));
        assert!(is_safe_url("mailto:a@b.md"));
        assert!(!is_safe_url("mailto:"));
        assert!(!is_safe_url("http://"));
        assert!(!is_safe_url("ftp://x"));
        assert!(!is_safe_url("javascript:alert(1)"));
        assert!(!is_safe_url("https://x\ty"));
        assert!(!is_safe_url(""));
        assert!(!is_safe_url("ș"));
    }
}
