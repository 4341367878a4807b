import base64
import io
import re
from html.parser import HTMLParser

from PIL import Image  # pillow is a dependency of matplotlib

from sparsebench.analysis import synthetic_results
from sparsebench.report import write_report

from .sample import CONFIG, HOSTILE_METHOD, SPARSITIES
from .pngs import png_size

DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "poster", "data", "background", "formaction"}


class TagCollector(HTMLParser):
    """The real tags and their attributes (escaped text in the page is not a tag)."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_embeds_at_least_four_decodable_png_figures(report_paths):
    html = report_paths["html"].read_text(encoding="utf-8")
    images = DATA_URI.findall(html)
    assert len(images) >= 4
    assert len(images) == html.count("<img ")
    for encoded in images:
        data = base64.b64decode(encoded, validate=True)
        width, height = png_size(data)
        assert width > 0 and height > 0
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # checks the chunks' CRCs, not just the header
    figure_files = sorted(p for k, p in report_paths.items() if k.startswith("figure:"))
    assert {base64.b64decode(e) for e in images} == {p.read_bytes() for p in figure_files}


def test_html_is_self_contained_and_escaped(report_paths):
    html = report_paths["html"].read_text(encoding="utf-8")
    parser = TagCollector()
    parser.feed(html)
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags and "object" not in tags
    urls = [value for _, attrs in parser.tags for name, value in attrs.items() if name in URL_ATTRIBUTES]
    assert len(urls) >= 4 and all(url.startswith("data:image/png;base64,") for url in urls)
    assert not any("http://" in v or "https://" in v for _, a in parser.tags for v in a.values()
                   if v and not v.startswith("data:"))
    inline = "".join(attrs.get("style") or "" for _, attrs in parser.tags)
    styles = inline + html.split("<style>")[1].split("</style>")[0]
    assert "@import" not in styles and "url(" not in styles
    assert 'http-equiv="Content-Security-Policy"' in html
    assert "&lt;script src=&quot;https://evil.example/x.js&quot;&gt;" in html
    assert "&lt;a href=&quot;http://evil.example/&quot;&gt;click&lt;/a&gt;" in html


def test_markdown_references_existing_pngs(report_paths):
    md_path = report_paths["markdown"]
    markdown = md_path.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown)
    assert len(links) >= 4
    for link in links:
        assert not re.match(r"^[a-z]+:", link) and not link.startswith("/")  # relative paths only
        target = md_path.parent / link
        assert target.is_file() and png_size(target.read_bytes())[0] > 0


def test_markdown_states_a_verdict_per_sparsity_and_method(report_paths):
    markdown = report_paths["markdown"].read_text(encoding="utf-8")
    verdict = r"(is equivalent to|is better than|is worse than|is inconclusive)"
    for method in ("random-search", HOSTILE_METHOD):
        shown = markdown_escaped(method)
        for s in SPARSITIES:
            sentence = rf"At sparsity {s:g}, {re.escape(shown)} (vs random )?{verdict}"
            assert re.search(sentence, markdown), (method, s)
    assert "<script" not in markdown and "<a href" not in markdown


def markdown_escaped(text: str) -> str:
    from sparsebench.report.markdown import md_escape
    return md_escape(text)


def test_config_and_tables_are_in_both_documents(report_paths):
    html = report_paths["html"].read_text(encoding="utf-8")
    markdown = report_paths["markdown"].read_text(encoding="utf-8")
    for text in ("adam", "batch\\_size", "Holm", "TOST", "Spearman", "Diverged trials"):
        assert text in markdown, text
        assert text.replace("\\", "") in html, text
    assert "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11" in markdown  # the seeds list, as the config table shows it
    assert CONFIG["dataset"] in html


def test_report_without_curves_or_probes_still_writes(tmp_path):
    trials, curves = synthetic_results(seeds=2, sparsities=(0.9,), epochs=3)
    paths = write_report(trials, curves.iloc[0:0], {"dataset": "tiny"}, tmp_path)
    figures = {k for k in paths if k.startswith("figure:")}
    assert figures == {"figure:paired_differences", "figure:gain_vs_cost", "figure:accuracy_vs_sparsity"}
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "No probe candidates were trained" in markdown and "At sparsity 0.9, random-search" in markdown
