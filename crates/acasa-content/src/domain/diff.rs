//! What changed between two revisions of a text: shown to a stale
//! translation so the translator sees what changed in its source since the
//! revision it translates.
//!
//! [`diff_lines`] compares lines; [`diff_words`] compares the words (and the
//! whitespace between them) of two short texts, such as a changed line or a
//! title. Both find a longest common subsequence after trimming the common
//! prefix and suffix, so the usual edit (a few lines changed in a long
//! article) costs little. The cost is bounded: when the differing middle
//! parts would need more than [`MAX_CELLS`] comparisons, the middle is
//! reported as wholly deleted then wholly inserted, and [`Diff::exact`] is
//! `false` (still a correct diff, just not a minimal one).
//!
//! [`Diff::hunks`] groups the changes with their context and
//! [`Diff::unified`] renders them in the familiar unified format
//! (`@@ -3,4 +3,5 @@`, lines prefixed with ` `, `-` or `+`);
//! [`Diff::inline`] renders a word diff as `[-old-]{+new+}`.
//!
//! Lines are compared as [`str::lines`] splits them, so a `\r\n` / `\n`
//! difference or a missing final newline is not reported.

use std::fmt::Write as _;

/// The most comparisons (old × new tokens in the differing middle) done
/// before falling back to a whole replacement: 1,000 × 1,000 lines; the
/// table takes 2 bytes a cell (2 MB at most).
pub const MAX_CELLS: usize = 1_000_000;

/// What happened to a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// In both texts.
    Equal,
    /// Only in the old text.
    Deleted,
    /// Only in the new text.
    Inserted,
}

/// One token (a line without its line ending, or a word or run of
/// whitespace) and what happened to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edit<'a> {
    /// What happened.
    pub op: Op,
    /// The token.
    pub text: &'a str,
}

/// The edits turning an old text into a new one, in order: within a
/// changed region, deletions come before insertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff<'a> {
    /// Every token of both texts, once.
    pub edits: Vec<Edit<'a>>,
    /// Whether the diff is minimal; `false` when the size cap replaced the
    /// differing middle wholesale.
    pub exact: bool,
}

/// A run of changes with up to `context` equal tokens around it, as in a
/// unified diff. Line numbers are 1-based; for an empty side, the start is
/// the line before the change (0 at the top), as `diff -u` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk<'a> {
    /// The first old line shown.
    pub old_start: usize,
    /// How many old lines are shown (equal and deleted).
    pub old_len: usize,
    /// The first new line shown.
    pub new_start: usize,
    /// How many new lines are shown (equal and inserted).
    pub new_len: usize,
    /// The edits shown.
    pub edits: Vec<Edit<'a>>,
}

/// The line diff of two texts.
pub fn diff_lines<'a>(old: &'a str, new: &'a str) -> Diff<'a> {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    diff_tokens(&old, &new)
}

/// The word diff of two texts: tokens are runs of non-whitespace and runs of
/// whitespace, so the edits' texts concatenate back to either text.
pub fn diff_words<'a>(old: &'a str, new: &'a str) -> Diff<'a> {
    diff_tokens(&words(old), &words(new))
}

/// Splits `s` into alternating runs of whitespace and non-whitespace.
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space: Option<bool> = None;
    for (i, c) in s.char_indices() {
        let space = c.is_whitespace();
        if in_space.is_some_and(|was| was != space) {
            out.push(&s[start..i]);
            start = i;
        }
        in_space = Some(space);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn diff_tokens<'a>(old: &[&'a str], new: &[&'a str]) -> Diff<'a> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..].iter().rev().zip(new[prefix..].iter().rev()).take_while(|(a, b)| a == b).count();
    let a = &old[prefix..old.len() - suffix];
    let b = &new[prefix..new.len() - suffix];
    let mut edits = Vec::with_capacity(old.len() + b.len());
    let equal = |text: &&'a str| Edit { op: Op::Equal, text };
    edits.extend(old[..prefix].iter().map(equal));
    let exact = middle(a, b, &mut edits);
    edits.extend(old[old.len() - suffix..].iter().map(equal));
    Diff { edits, exact }
}

/// Appends the edits of `a` → `b` (no common prefix or suffix); returns
/// whether they are minimal.
fn middle<'a>(a: &[&'a str], b: &[&'a str], edits: &mut Vec<Edit<'a>>) -> bool {
    let deleted = |text: &&'a str| Edit { op: Op::Deleted, text };
    let inserted = |text: &&'a str| Edit { op: Op::Inserted, text };
    let (n, m) = (a.len(), b.len());
    let cells = (n + 1).checked_mul(m + 1);
    if n == 0 || m == 0 || cells.is_none_or(|c| c > MAX_CELLS) {
        edits.extend(a.iter().map(deleted));
        edits.extend(b.iter().map(inserted));
        return n == 0 || m == 0;
    }
    // lcs[i * w + j] = length of the LCS of a[i..] and b[j..]. It never
    // exceeds min(n, m) ≤ √MAX_CELLS = 1,000, so u16 is enough.
    let w = m + 1;
    let mut lcs = vec![0u16; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1].saturating_add(1)
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            edits.push(Edit { op: Op::Equal, text: a[i] });
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * w + j] >= lcs[i * w + j + 1] {
            edits.push(deleted(&a[i]));
            i += 1;
        } else {
            edits.push(inserted(&b[j]));
            j += 1;
        }
    }
    edits.extend(a[i..].iter().map(deleted));
    edits.extend(b[j..].iter().map(inserted));
    true
}

impl<'a> Diff<'a> {
    /// Whether the texts are the same (as tokens).
    pub fn is_unchanged(&self) -> bool {
        self.edits.iter().all(|e| e.op == Op::Equal)
    }

    /// How many tokens were deleted.
    pub fn deleted(&self) -> usize {
        self.edits.iter().filter(|e| e.op == Op::Deleted).count()
    }

    /// How many tokens were inserted.
    pub fn inserted(&self) -> usize {
        self.edits.iter().filter(|e| e.op == Op::Inserted).count()
    }

    /// The changes with up to `context` equal tokens around each; changes
    /// closer than `2 × context` share a hunk.
    pub fn hunks(&self, context: usize) -> Vec<Hunk<'a>> {
        // Edit-index ranges to show, merged when they touch.
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut k = 0;
        while k < self.edits.len() {
            if self.edits[k].op == Op::Equal {
                k += 1;
                continue;
            }
            let start = k;
            while k < self.edits.len() && self.edits[k].op != Op::Equal {
                k += 1;
            }
            let from = start.saturating_sub(context);
            let to = k.saturating_add(context).min(self.edits.len());
            match ranges.last_mut() {
                Some(last) if last.1 >= from => last.1 = to,
                _ => ranges.push((from, to)),
            }
        }
        // Old and new line numbers before each edit.
        let mut old_line = 0;
        let mut new_line = 0;
        let mut next = 0;
        let mut hunks = Vec::with_capacity(ranges.len());
        for (from, to) in ranges {
            for e in &self.edits[next..from] {
                old_line += usize::from(e.op != Op::Inserted);
                new_line += usize::from(e.op != Op::Deleted);
            }
            let edits = self.edits[from..to].to_vec();
            let old_len = edits.iter().filter(|e| e.op != Op::Inserted).count();
            let new_len = edits.iter().filter(|e| e.op != Op::Deleted).count();
            hunks.push(Hunk {
                old_start: if old_len == 0 { old_line } else { old_line + 1 },
                old_len,
                new_start: if new_len == 0 { new_line } else { new_line + 1 },
                new_len,
                edits,
            });
            old_line += old_len;
            new_line += new_len;
            next = to;
        }
        hunks
    }

    /// The unified rendering of a line diff with `context` lines around each
    /// change: an `@@ -old_start,old_len +new_start,new_len @@` header per
    /// hunk, then the lines prefixed with ` `, `-` or `+`, each ending in
    /// `\n`. Empty when nothing changed.
    pub fn unified(&self, context: usize) -> String {
        let mut out = String::new();
        for hunk in self.hunks(context) {
            let _ = writeln!(out, "@@ -{},{} +{},{} @@", hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len);
            for e in hunk.edits {
                let mark = match e.op {
                    Op::Equal => ' ',
                    Op::Deleted => '-',
                    Op::Inserted => '+',
                };
                out.push(mark);
                out.push_str(e.text);
                out.push('\n');
            }
        }
        out
    }

    /// The inline rendering of a word diff: equal text as is, deletions as
    /// `[-text-]`, insertions as `{+text+}` (adjacent ones merged), as
    /// `git diff --word-diff` writes them. Plain text: escape it before
    /// putting it into HTML.
    pub fn inline(&self) -> String {
        let mut out = String::new();
        let mut open: Option<Op> = None;
        let close = |out: &mut String, op: Option<Op>| match op {
            Some(Op::Deleted) => out.push_str("-]"),
            Some(Op::Inserted) => out.push_str("+}"),
            _ => {}
        };
        for e in &self.edits {
            if open != Some(e.op) {
                close(&mut out, open);
                match e.op {
                    Op::Deleted => out.push_str("[-"),
                    Op::Inserted => out.push_str("{+"),
                    Op::Equal => {}
                }
                open = Some(e.op);
            }
            out.push_str(e.text);
        }
        close(&mut out, open);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old_text(d: &Diff<'_>, sep: &str) -> String {
        let v: Vec<&str> = d.edits.iter().filter(|e| e.op != Op::Inserted).map(|e| e.text).collect();
        v.join(sep)
    }

    fn new_text(d: &Diff<'_>, sep: &str) -> String {
        let v: Vec<&str> = d.edits.iter().filter(|e| e.op != Op::Deleted).map(|e| e.text).collect();
        v.join(sep)
    }

    #[test]
    fn identical_texts_are_unchanged() {
        let d = diff_lines("a\nb\n", "a\nb");
        assert!(d.is_unchanged());
        assert!(d.exact);
        assert_eq!(d.unified(3), "");
        assert!(diff_lines("", "").edits.is_empty());
    }

    #[test]
    fn a_changed_line_is_deleted_then_inserted() {
        let d = diff_lines("one\ntwo\nthree", "one\n2\nthree");
        assert_eq!(
            d.edits,
            [
                Edit { op: Op::Equal, text: "one" },
                Edit { op: Op::Deleted, text: "two" },
                Edit { op: Op::Inserted, text: "2" },
                Edit { op: Op::Equal, text: "three" },
            ]
        );
        assert_eq!((d.deleted(), d.inserted()), (1, 1));
        assert_eq!(d.unified(1), "@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n");
    }

    #[test]
    fn the_diff_is_minimal_and_rebuilds_both_texts() {
        let old = "a\nb\nc\nd\ne\nf\ng";
        let new = "w\na\nb\nx\nd\ne\ny\nz\ng";
        let d = diff_lines(old, new);
        assert!(d.exact);
        assert_eq!(old_text(&d, "\n"), old);
        assert_eq!(new_text(&d, "\n"), new);
        // LCS is a b d e g: 5 equal lines.
        assert_eq!(d.edits.iter().filter(|e| e.op == Op::Equal).count(), 5);
        assert_eq!((d.deleted(), d.inserted()), (2, 4));
    }

    #[test]
    fn insertions_and_deletions_at_the_ends() {
        assert_eq!(diff_lines("", "a\nb").unified(3), "@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(diff_lines("a\nb", "").unified(3), "@@ -1,2 +0,0 @@\n-a\n-b\n");
        assert_eq!(diff_lines("a", "a\nb").unified(0), "@@ -1,0 +2,1 @@\n+b\n");
        assert_eq!(diff_lines("b", "a\nb").unified(0), "@@ -0,0 +1,1 @@\n+a\n");
    }

    #[test]
    fn distant_changes_get_separate_hunks_with_line_numbers() {
        let old: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
        let mut new = old.clone();
        new[1] = "changed 2".into();
        new[17] = "changed 18".into();
        let (old, new) = (old.join("\n"), new.join("\n"));
        let d = diff_lines(&old, &new);
        let hunks = d.hunks(2);
        assert_eq!(hunks.len(), 2);
        assert_eq!((hunks[0].old_start, hunks[0].old_len, hunks[0].new_start, hunks[0].new_len), (1, 4, 1, 4));
        assert_eq!((hunks[1].old_start, hunks[1].old_len, hunks[1].new_start, hunks[1].new_len), (16, 5, 16, 5));
        assert_eq!(
            d.unified(2),
            "@@ -1,4 +1,4 @@\n line 1\n-line 2\n+changed 2\n line 3\n line 4\n\
             @@ -16,5 +16,5 @@\n line 16\n line 17\n-line 18\n+changed 18\n line 19\n line 20\n"
        );
        // With more context the two hunks merge into one.
        assert_eq!(d.hunks(8).len(), 1);
    }

    #[test]
    fn hunk_numbers_follow_earlier_insertions() {
        let d = diff_lines("a\nb\nc\nd\ne\nf\ng\nh", "new\na\nb\nc\nd\ne\nf\ng\nH");
        assert_eq!(d.unified(1), "@@ -1,1 +1,2 @@\n+new\n a\n@@ -7,2 +8,2 @@\n g\n-h\n+H\n");
    }

    #[test]
    fn word_diffs_show_what_changed_within_a_line() {
        let old = "Cererea se depune în 30 de zile la ANOFM.";
        let new = "Cererea se depune în 60 de zile la ANOFM sau online.";
        let d = diff_words(old, new);
        assert!(d.exact);
        assert_eq!(old_text(&d, ""), old);
        assert_eq!(new_text(&d, ""), new);
        assert_eq!(d.inline(), "Cererea se depune în [-30-]{+60+} de zile la [-ANOFM.-]{+ANOFM sau online.+}");
    }

    #[test]
    fn word_tokens_keep_whitespace() {
        assert_eq!(words("  a b\t\tcc "), ["  ", "a", " ", "b", "\t\t", "cc", " "]);
        assert_eq!(words("ș ț"), ["ș", " ", "ț"]);
        assert!(words("").is_empty());
        assert_eq!(diff_words("a b", "a b").inline(), "a b");
        assert_eq!(diff_words("", "x").inline(), "{+x+}");
        assert_eq!(diff_words("x", "").inline(), "[-x-]");
    }

    #[test]
    fn above_the_cap_the_middle_is_replaced_wholesale() {
        let old: Vec<String> = (0..1_500).map(|i| format!("old {i}")).collect();
        let new: Vec<String> = (0..1_500).map(|i| format!("new {i}")).collect();
        let old = format!("head\n{}\ntail", old.join("\n"));
        let new = format!("head\n{}\ntail", new.join("\n"));
        let d = diff_lines(&old, &new);
        assert!(!d.exact);
        assert_eq!(old_text(&d, "\n"), old);
        assert_eq!(new_text(&d, "\n"), new);
        assert_eq!((d.deleted(), d.inserted()), (1_500, 1_500));
        assert_eq!(d.edits.first().map(|e| e.op), Some(Op::Equal));
        assert_eq!(d.edits.last().map(|e| e.op), Some(Op::Equal));
    }

    #[test]
    fn large_texts_with_small_edits_stay_exact_and_cheap() {
        let old: Vec<String> = (0..100_000).map(|i| format!("line {i}")).collect();
        let mut new = old.clone();
        new[50_000] = "edited".into();
        let (old, new) = (old.join("\n"), new.join("\n"));
        let d = diff_lines(&old, &new);
        assert!(d.exact);
        assert_eq!(d.unified(1), "@@ -50000,3 +50000,3 @@\n line 49999\n-line 50000\n+edited\n line 50001\n");
    }

    #[test]
    fn just_under_the_cap_is_exact() {
        let old: Vec<String> = (0..990).map(|i| format!("{}", i % 7)).collect();
        let new: Vec<String> = (0..990).map(|i| format!("{}", i % 5)).collect();
        let (old, new) = (old.join("\n"), new.join("\n"));
        let d = diff_lines(&old, &new);
        assert!(d.exact);
        assert_eq!(old_text(&d, "\n"), old);
        assert_eq!(new_text(&d, "\n"), new);
    }
}
