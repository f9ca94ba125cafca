//! A tiny column-aligned text table, and aligned `key: value` blocks. Pure.
//!
//! Columns are separated by two spaces and padded to their widest cell
//! (counted in characters); the last column is not padded, so no line ends
//! in whitespace. Numeric columns can be right-aligned.

/// Rows of cells under a header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            right: Vec::new(),
        }
    }

    /// Right-aligns the columns at these indices (for numbers).
    pub fn right(mut self, columns: &[usize]) -> Self {
        self.right = columns.to_vec();
        self
    }

    /// Appends a row; missing cells are empty, extra cells are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending in `\n`.
    pub fn render(&self) -> String {
        let width = |cell: &String| cell.chars().count();
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| width(&row[c]))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[c] - width(cell));
                if self.right.contains(&c) {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key: value` lines with the values aligned, each ending in `\n`.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            let pad = " ".repeat(width - k.chars().count());
            format!("{k}:{pad}  {v}").trim_end().to_owned() + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell_without_trailing_space() {
        let mut table = Table::new(["NAME", "KIND", "X"]);
        table.row(["node2", "node", "1"]);
        table.row(["a-much-longer-name", "static", ""]);
        assert_eq!(
            table.render(),
            "NAME                KIND    X\n\
             node2               node    1\n\
             a-much-longer-name  static\n"
        );
    }

    #[test]
    fn right_aligned_columns_and_missing_cells() {
        let mut table = Table::new(["PORT", "RX", "TX"]).right(&[1, 2]);
        table.row(["a/b", "5", "123456"]);
        table.row(["c/d", "70"]);
        assert_eq!(
            table.render(),
            "PORT  RX      TX\n\
             a/b    5  123456\n\
             c/d   70\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut table = Table::new(["N", "V"]);
        table.row(["é", "1"]);
        table.row(["ab", "2"]);
        assert_eq!(table.render(), "N   V\né   1\nab  2\n");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        let table = Table::new(["A", "B"]);
        assert!(table.is_empty());
        assert_eq!(table.render(), "A  B\n");
    }

    #[test]
    fn key_values_align_their_values() {
        assert_eq!(
            key_values(&[
                ("node", "n1".into()),
                ("underlay", "10.0.0.1".into()),
                ("x", String::new())
            ]),
            "node:      n1\nunderlay:  10.0.0.1\nx:\n"
        );
    }
}
