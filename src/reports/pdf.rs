//! A report [`Document`] as PDF (A4), in pure Rust: pdf-writer writes the objects, the embedded
//! DejaVu Sans (assets/fonts, Bitstream Vera license) draws the text, Vietnamese included, as one
//! CID font (glyph id = CID) with a ToUnicode map so the text can be copied and searched. Lines
//! wrap by the glyphs' measured advances; tables are rows of wrapped cells in measured columns.

use std::collections::BTreeMap;
use std::io::Write as _;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};

use super::Document;

/// DejaVu Sans 2.37 from Debian's fonts-dejavu-core (license in assets/fonts/DejaVu-LICENSE).
pub static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 48.0;
const BODY: f32 = 9.0;
const SMALL: f32 = 7.5;
const LABEL_W: f32 = 170.0;
const CELL_PAD: f32 = 3.0;
const FONT_NAME: Name<'static> = Name(b"F1");

/// Glyph lookup and advances of the embedded font.
struct Font<'f> {
    face: ttf_parser::Face<'f>,
    per_em: f32,
    fallback: u16,
}

impl<'f> Font<'f> {
    fn load(data: &'f [u8]) -> Font<'f> {
        let face = ttf_parser::Face::parse(data, 0).expect("the embedded font parses");
        let per_em = f32::from(face.units_per_em());
        let fallback = face.glyph_index('?').map_or(0, |g| g.0);
        Font {
            face,
            per_em,
            fallback,
        }
    }

    fn glyph(&self, c: char) -> u16 {
        self.face.glyph_index(c).map_or(self.fallback, |g| g.0)
    }

    /// Advance of glyph `gid` in thousandths of the font size.
    fn advance(&self, gid: u16) -> f32 {
        let units = self
            .face
            .glyph_hor_advance(ttf_parser::GlyphId(gid))
            .unwrap_or(0);
        f32::from(units) * 1000.0 / self.per_em
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars()
            .map(|c| self.advance(self.glyph(c)))
            .sum::<f32>()
            * size
            / 1000.0
    }

    fn scaled(&self, units: i16) -> f32 {
        f32::from(units) * 1000.0 / self.per_em
    }
}

/// `text` broken into lines no wider than `width` at `size`: at spaces, and inside a word only
/// when the word alone is too wide (hashes, log lines).
fn wrap(font: &Font, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if font.width(&candidate, size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            for c in word.chars() {
                line.push(c);
                if font.width(&line, size) > width && line.chars().count() > 1 {
                    line.pop();
                    lines.push(std::mem::take(&mut line));
                    line.push(c);
                }
            }
        }
        lines.push(line);
    }
    lines
}

/// Pages being laid out, top to bottom.
struct Layout<'f> {
    font: Font<'f>,
    pages: Vec<Content>,
    y: f32,
    /// Glyphs drawn, with a character each stands for (ToUnicode and widths).
    used: BTreeMap<u16, char>,
}

impl<'f> Layout<'f> {
    fn new(font: Font<'f>) -> Layout<'f> {
        Layout {
            font,
            pages: vec![Content::new()],
            y: PAGE_H - MARGIN,
            used: BTreeMap::new(),
        }
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a page")
    }

    /// Room for `height` more points on this page, else a new page.
    fn room(&mut self, height: f32) {
        if self.y - height < MARGIN + 14.0 {
            self.pages.push(Content::new());
            self.y = PAGE_H - MARGIN;
        }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, text: &str) {
        self.text_on(self.pages.len() - 1, x, y, size, text);
    }

    fn text_on(&mut self, page: usize, x: f32, y: f32, size: f32, text: &str) {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let gid = self.font.glyph(c);
            self.used.entry(gid).or_insert(c);
            bytes.extend_from_slice(&gid.to_be_bytes());
        }
        let page = &mut self.pages[page];
        page.begin_text();
        page.set_font(FONT_NAME, size);
        page.next_line(x, y);
        page.show(Str(&bytes));
        page.end_text();
    }

    fn rule(&mut self, x1: f32, x2: f32, y: f32) {
        let page = self.page();
        page.set_line_width(0.5);
        page.move_to(x1, y);
        page.line_to(x2, y);
        page.stroke();
    }

    /// A paragraph at `x`, wrapped to `width`.
    fn paragraph(&mut self, x: f32, width: f32, size: f32, text: &str) {
        let leading = size * 1.3;
        for line in wrap(&self.font, text, size, width) {
            self.room(leading);
            self.y -= leading;
            self.text(x, self.y, size, &line);
        }
    }

    fn fields(&mut self, fields: &[super::Field]) {
        let leading = BODY * 1.35;
        let value_x = MARGIN + LABEL_W;
        let value_w = PAGE_W - MARGIN - value_x;
        for field in fields {
            let labels = wrap(&self.font, &field.label, BODY, LABEL_W - 8.0);
            let values = wrap(&self.font, &field.value, BODY, value_w);
            let lines = labels.len().max(values.len());
            self.room(leading * lines as f32);
            let top = self.y;
            for (i, line) in labels.iter().enumerate() {
                self.text(MARGIN, top - leading * (i + 1) as f32, BODY, line);
            }
            for (i, line) in values.iter().enumerate() {
                self.text(value_x, top - leading * (i + 1) as f32, BODY, line);
            }
            self.y = top - leading * lines as f32;
        }
    }

    fn table(&mut self, header: &[String], rows: &[Vec<String>]) {
        let size = if header.len() > 4 { SMALL } else { BODY };
        let leading = size * 1.3;
        let avail = PAGE_W - 2.0 * MARGIN;
        let mut natural: Vec<f32> = header
            .iter()
            .map(|h| self.font.width(h, size) + 2.0 * CELL_PAD)
            .collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate().take(natural.len()) {
                let w = self.font.width(cell, size) + 2.0 * CELL_PAD;
                natural[i] = natural[i].max(w.min(avail));
            }
        }
        let total: f32 = natural.iter().sum();
        let widths: Vec<f32> = if total <= avail {
            natural
        } else {
            natural.iter().map(|w| w * avail / total).collect()
        };
        let right = MARGIN + widths.iter().sum::<f32>();
        let draw_row = |layout: &mut Layout, cells: &[String], line_under: bool| {
            let wrapped: Vec<Vec<String>> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, w)| wrap(&layout.font, cell, size, w - 2.0 * CELL_PAD))
                .collect();
            let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
            let height = leading * lines as f32 + 2.0;
            layout.room(height);
            let top = layout.y;
            let mut x = MARGIN;
            for (cell, w) in wrapped.iter().zip(&widths) {
                for (i, line) in cell.iter().enumerate() {
                    layout.text(x + CELL_PAD, top - leading * (i + 1) as f32, size, line);
                }
                x += w;
            }
            layout.y = top - height;
            if line_under {
                layout.rule(MARGIN, right, layout.y + 1.0);
            }
        };
        draw_row(self, header, true);
        for row in rows {
            draw_row(self, row, false);
        }
    }
}

/// The document as a PDF file.
pub fn render(doc: &Document) -> Vec<u8> {
    let mut layout = Layout::new(Font::load(FONT));
    let width = PAGE_W - 2.0 * MARGIN;
    layout.paragraph(MARGIN, width, 15.0, &doc.title);
    layout.y -= 4.0;
    layout.paragraph(MARGIN, width, BODY, &doc.subtitle);
    layout.paragraph(MARGIN, width, BODY, &doc.generated);
    for section in &doc.sections {
        layout.room(40.0);
        layout.y -= 10.0;
        layout.paragraph(MARGIN, width, 12.0, &section.title);
        layout.y -= 3.0;
        let y = layout.y;
        layout.rule(MARGIN, PAGE_W - MARGIN, y);
        layout.y -= 2.0;
        if section.has_fields {
            layout.fields(&section.fields);
        }
        if section.has_table {
            layout.y -= 3.0;
            layout.table(&section.header, &section.rows);
        }
        if section.has_pre {
            layout.y -= 3.0;
            for line in &section.pre {
                layout.paragraph(MARGIN, width, SMALL, line);
            }
        }
        if section.is_empty {
            layout.paragraph(MARGIN, width, BODY, &section.empty);
        }
    }
    let count = layout.pages.len();
    for n in 0..count {
        let footer = format!("{} — {}/{}", doc.title, n + 1, count);
        let footer = wrap(&layout.font, &footer, SMALL, width)
            .into_iter()
            .next()
            .unwrap_or_default();
        layout.text_on(n, MARGIN, MARGIN - 10.0, SMALL, &footer);
    }
    write(layout)
}

fn write(layout: Layout) -> Vec<u8> {
    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let (catalog, tree, type0, cid, descriptor, cmap_ref, file) = (
        alloc(),
        alloc(),
        alloc(),
        alloc(),
        alloc(),
        alloc(),
        alloc(),
    );
    let page_refs: Vec<(Ref, Ref)> = layout.pages.iter().map(|_| (alloc(), alloc())).collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(page_refs.len() as i32);
    for ((page_ref, content_ref), content) in page_refs.iter().zip(layout.pages) {
        let mut page = pdf.page(*page_ref);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(*content_ref);
        page.resources().fonts().pair(FONT_NAME, type0);
        page.finish();
        let data = deflate(&content.finish());
        pdf.stream(*content_ref, &data).filter(Filter::FlateDecode);
    }
    let base = Name(b"DejaVuSans");
    let info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap_ref);
    let font = &layout.font;
    let mut cid_font = pdf.cid_font(cid);
    cid_font.subtype(CidFontType::Type2);
    cid_font.base_font(base);
    cid_font.system_info(info);
    cid_font.font_descriptor(descriptor);
    cid_font.default_width(font.advance(0));
    cid_font.cid_to_gid_map_predefined(Name(b"Identity"));
    {
        let mut widths = cid_font.widths();
        for gid in layout.used.keys() {
            widths.consecutive(*gid, [font.advance(*gid)]);
        }
    }
    cid_font.finish();
    let bbox = font.face.global_bounding_box();
    let mut fd = pdf.font_descriptor(descriptor);
    fd.name(base)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            font.scaled(bbox.x_min),
            font.scaled(bbox.y_min),
            font.scaled(bbox.x_max),
            font.scaled(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(font.scaled(font.face.ascender()))
        .descent(font.scaled(font.face.descender()))
        .cap_height(font.scaled(font.face.capital_height().unwrap_or(font.face.ascender())))
        .stem_v(80.0)
        .font_file2(file);
    fd.finish();
    let mut cmap = UnicodeCmap::new(Name(b"Custom"), info);
    for (gid, c) in &layout.used {
        cmap.pair(*gid, *c);
    }
    pdf.cmap(cmap_ref, &cmap.finish());
    let compressed = deflate(FONT);
    pdf.stream(file, &compressed)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), FONT.len() as i32);
    pdf.finish()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_draws_vietnamese() {
        let font = Font::load(FONT);
        for c in "ắằẳẵặệộữđĐƯơ".chars() {
            assert_ne!(font.glyph(c), font.fallback, "{c} has no glyph");
        }
    }

    #[test]
    fn wrapped_lines_fit() {
        let font = Font::load(FONT);
        let text =
            "Cấp độ của hệ thống thông tin aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let lines = wrap(&font, text, 9.0, 80.0);
        assert!(lines.len() > 2);
        assert!(
            lines.iter().all(|l| font.width(l, 9.0) <= 80.0),
            "{lines:?}"
        );
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
    }
}
