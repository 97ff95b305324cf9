"""Every section reference in the code, config, tests and documentation names a section that exists.

A reference is a document — `README` or `docs/<name>.md` — then `§` and either a section number
(`docs/method.md §4`, `§1.3`; further numbers may follow: `§2, §5`, `§4/§6`), which must be a
numbered heading of that document, or a heading in double quotes (`docs/gpu.md §"Precision"`),
which must be a heading's text (without its number). Inside docs/method.md a bare `§N` is one of
its own sections. Every `§` followed by a digit or a quote elsewhere must belong to such a
reference, every `docs/<name>.md` named must exist, and the older free forms (`README: GPUs`,
`README "Heading"`) are refused, since nothing checked them. Relative Markdown links of README.md
and docs/*.md must name an existing file and, for a Markdown file, an existing heading anchor.
"""

import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = (
    "i2crc_core",
    "rules",
    "workflow_scripts",
    "bench",
    "config",
    "profiles",
    "tests",
    "docs",
    ".test",
    ".ci",
)
ROOT_FILES = ("README.md", "Makefile", "Snakefile", "config.yaml", "pyproject.toml")
SUFFIXES = {".py", ".smk", ".yaml", ".yml", ".rst", ".md", ".toml", ".cfg", ".txt"}
SELF = "docs/method.md"

SECTION = r'§(?:"[^"\n]+"|\d+(?:\.\d+)*)'
REFERENCE = re.compile(
    rf"(?P<doc>README(?:\.md)?|docs/[\w-]+\.md)\s+"
    rf"(?P<sections>{SECTION}(?:\s*(?:,|/|and|or)\s*{SECTION})*)"
)
ONE_SECTION = re.compile(r'§(?:"(?P<title>[^"\n]+)"|(?P<number>\d+(?:\.\d+)*))')
LOOSE_SECTION = re.compile(r'§(?="|\d)')
DOC_NAME = re.compile(r"docs/[\w-]+\.md")
OLD_FORMS = re.compile(r'README(?:\.md)?(?::\s|(?:,\s*|\s+)"|\))')
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def scanned_files() -> list[Path]:
    files = [REPO / name for name in ROOT_FILES]
    for folder in FOLDERS:
        files += [
            path
            for path in (REPO / folder).rglob("*")
            if path.is_file() and (path.suffix in SUFFIXES or path.name == "run")
        ]
    return sorted(path for path in files if path.name != Path(__file__).name)


def _document_path(doc: str) -> Path:
    return REPO / ("README.md" if doc.startswith("README") else doc)


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@cache
def headings(path: Path) -> tuple[set[str], set[str], set[str]]:
    """(numbers, titles without their number, anchors) of a Markdown file's headings."""
    numbers, titles, anchors = set(), set(), set()
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for line in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE):
        numbered = re.match(r"(\d+(?:\.\d+)*)\.?\s+(.*)", line)
        if numbered:
            numbers.add(numbered.group(1))
        titles.add(numbered.group(2) if numbered else line)
        anchor = slug(line)
        anchors.update(
            {anchor} if anchor not in anchors else {f"{anchor}-{i}" for i in range(1, 9)}
        )
    return numbers, titles, anchors


def _section_problems(doc: str, sections: str) -> list[str]:
    path = _document_path(doc)
    if not path.is_file():
        return [f"{doc} does not exist"]
    numbers, titles, _ = headings(path)
    found = []
    for section in ONE_SECTION.finditer(sections):
        if section["number"] and section["number"] not in numbers:
            found.append(f"{doc} has no section numbered {section['number']}")
        if section["title"] and section["title"] not in titles:
            found.append(f'{doc} has no heading "{section["title"]}"')
    return found


def reference_problems(text: str, where: str) -> list[str]:
    """Every way `text`, the content of the file `where` (relative to the repository), cites a
    section that does not exist or cites one in a form this check cannot verify."""
    found = []
    covered = set()
    for reference in REFERENCE.finditer(text):
        found += _section_problems(reference["doc"], reference["sections"])
        covered.update(range(reference.start("sections"), reference.end("sections")))
    for loose in LOOSE_SECTION.finditer(text):
        if loose.start() in covered:
            continue
        if where == SELF:
            found += _section_problems(SELF, text[loose.start() : loose.start() + 40].split(")")[0])
        else:
            found.append(f"§ without a document: {text[loose.start() : loose.start() + 30]!r}")
    for name in set(DOC_NAME.findall(text)):
        if not (REPO / name).is_file():
            found.append(f"{name} does not exist")
    for old in OLD_FORMS.finditer(text):
        found.append(
            f"unchecked form {text[old.start() : old.start() + 30]!r}; "
            'write README §"Heading" or docs/<name>.md §"Heading" / §N'
        )
    return [f"{where}: {problem}" for problem in found]


def link_problems(text: str, where: str) -> list[str]:
    """Relative Markdown links of the document `where` whose file or heading is missing."""
    found = []
    for link in LINK.finditer(FENCE.sub("", text)):
        target = link["target"]
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        path = ((REPO / where).parent / file_part).resolve() if file_part else REPO / where
        if not path.exists():
            found.append(f"{where}: link to a missing file {target}")
        elif anchor and path.suffix == ".md" and anchor not in headings(path)[2]:
            found.append(f"{where}: link to a missing heading {target}")
    return found


def test_there_are_references_to_check():
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in scanned_files()]
    assert sum(len(REFERENCE.findall(text)) for text in texts) >= 40
    assert {"README.md", "docs/gpu.md", "docs/method.md"} <= {
        str(path.relative_to(REPO)) for path in scanned_files()
    }


@pytest.mark.parametrize("path", scanned_files(), ids=lambda path: str(path.relative_to(REPO)))
def test_every_section_reference_names_a_heading_that_exists(path):
    where = str(path.relative_to(REPO))
    text = path.read_text(encoding="utf-8", errors="replace")
    problems = reference_problems(text, where)
    if path.suffix == ".md":
        problems += link_problems(text, where)
    assert not problems, "\n".join(problems)


def test_the_check_finds_each_kind_of_broken_reference():
    """Against the real documents: what used to be written, and references to sections that
    are not there, are reported; references that resolve are not."""
    good = (
        'docs/method.md §4/§6, docs/gpu.md §"Precision", README §"The two commands", '
        "docs/method.md §2, §5 and docs/method.md §1.3"
    )
    assert reference_problems(good, "x.py") == []
    for bad in [
        "(README: GPU)",
        "(README: cluster sizing)",
        'README "Reproduce the paper"',
        "(README)",
        'docs/gpu.md §"GPU"',
        "docs/method.md §11",
        "docs/method.md §2, §12",
        "docs/nowhere.md",
        "see §4 above",
        'README §"Results on the benchmark"',
    ]:
        assert reference_problems(bad, "x.py"), bad
    assert reference_problems("(§4 rule 5)", SELF) == []
    assert reference_problems("(§12)", SELF)
    assert (
        link_problems("[a](docs/gpu.md#precision) [b](docs/images/rulegraph.dot)", "README.md")
        == []
    )
    assert link_problems("[a](docs/gpu.md#gpu-precision)", "README.md")
    assert link_problems("[a](docs/gpus.md)", "README.md")
