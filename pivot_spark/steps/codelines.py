"""Lines without linguistic content: code, commands, markup, tables, headings in capitals (pure; no pyspark).

Language ID labels every line with a language, and a line of C, shell or LibreOffice Basic inside a French page
gets one too (often the page's own, sometimes a stray one such as ``ceb`` for ``int``). Such lines carry
identifiers, not words of a language, and their tokens must not count as the language's for the pivots.
:func:`code_line_mask` marks them; language ID labels them ``zxx`` (ISO 639: no linguistic content).

No well-kept library answers "is this line code or prose" (the PyPI detectors guess which programming language a
snippet is in, or are unmaintained), so this is a heuristic over each line, measured on lines of the corpus
labelled by hand (``tests/fixtures/code_lines.tsv``, ``tests/unit/test_codelines.py``). A line is code when:

1. it has no letter (numbers, punctuation, box drawing, emoji); or
2. it is a heading in capitals (every cased letter upper-case, at most six words, no final period):
   ``SYNOPSIS``, ``SEE ALSO``, ``VALEUR RENVOYÉE``, function names such as ``DISTR.HIPERGEOM``; or
3. it matches a construct of code: a C preprocessor line, a C declaration (``int fscanf(FILE *restrict f,``),
   a Python import or definition (``from scriptforge import CreateScriptService``), a LibreOffice Basic statement (``Dim``, ``Sub``, ``End Sub``, ``Option Explicit``, ``... As Integer``), a
   statement ending in ``;``, ``{`` or ``}`` right after code, a shell prompt (``$ ls``, ``user@host:~$``), a
   line of font family names (``Noto Sans CJK JP``); unless a natural-language phrase of at least
   ``_LONG_PHRASE`` words or CJK characters sits in it (a sentence that quotes code stays prose); or
4. its whitespace-separated tokens hold at least as many *code tokens* (identifiers with ``_``, ``::``, ``->``,
   camelCase or inner capitals, calls ``f(x)``, options ``-f``/``--force``, paths, assignments, operators,
   markup, numbers mixed with letters) as *words* (letters only, inner apostrophes and hyphens allowed; a run of
   CJK characters counts one word per two characters), and no phrase of three consecutive words or CJK
   characters makes it prose.

So ``-f, --force`` and ``bash(1), ssh(1)`` are code, ``-f, --force  ignore nonexistent files`` and
``See ssh(1) for details`` are prose; single words (``Sidebar``, ``Esempio:``) are prose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_LETTER = re.compile(r"[^\W\d_]")
# Han, kana (with the prolonged sound mark), Hangul: scripts written without spaces between words
_CJK_CLASS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
_CJK = re.compile(_CJK_CLASS)
_CJK_RUN = re.compile(_CJK_CLASS + "+")
# a word: letters, with inner apostrophes or hyphens (l'état, e-mail, Rede‐); surrounding punctuation stripped
_WORD = re.compile(r"[^\W\d_]+(?:['’‐-][^\W\d_]+)*")
_EDGE = "\"'“”„«»‹›‘’`([{<>}]).,;:!?¡¿…–—-•·→"
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
_PROMPT = re.compile(r"^(?:[$%] \S|[\w.-]+@[\w.-]+:\S*[$#] ?|>>> \S)")
_C_PREPROCESSOR = re.compile(r"^#\s*(?:include|define|undef|ifdef|ifndef|if|elif|else|endif|pragma|error)\b")
_C_TYPES = (r"(?:(?:static|extern|const|volatile|unsigned|signed|long|short|struct|union|enum|inline|restrict)\s+)*"
            r"(?:int|char|void|long|short|float|double|bool|size_t|ssize_t|off_t|pid_t|uid_t|gid_t|mode_t|time_t|"
            r"u?int\d+_t|FILE|struct\s+\w+|union\s+\w+|enum\s+\w+|[a-z_]\w*_t)")
_C_TYPE_ALONE = re.compile(rf"^{_C_TYPES}\s*\**$")  # a synopsis splits "int" and "foo(...)" over two lines
_C_DECL = re.compile(rf"^(?=.*[;(){{}}\[\]*=])(?:typedef\s+)?{_C_TYPES}\s*\**\s*\w+\s*(?:\(|\[|;|=|,)")
_C_KEYWORD = re.compile(r"^(?:if|for|while|switch|return|else|do|case|goto|sizeof)\b\s*[({;:]|^(?:else|do)\s*\{|"
                        r"^(?:break|continue|default)\s*[:;]|^return\b.*;$")
_BASIC = re.compile(
    r"^(?:(?:Dim|ReDim|Global)\s+\w|(?:(?:Private|Public|Static)\s+)?(?:Sub\s+\w+\s*(?:\(|$)|Function\s+\w+\s*\()|"
    r"End\s+(?:Sub|Function|If|Select|With|Type|Property)$|Exit\s+(?:Sub|Function|For|Do)$|"
    r"Option\s+(?:Explicit|Compatible|Base\s+\d|ClassModule|VBASupport\s+\d|Private\s+Module)$|"
    r"On\s+(?:Local\s+)?Error\s+(?:GoTo|Resume)|Next(?:\s+[a-z]\w*)?$|Loop(?:\s+(?:While|Until)\b.*)?$|Wend$|"
    r"Else$|ElseIf\s|Select\s+Case\s|Case\s+(?:Else|Is\b.*|[\d\"'].*)$|If\s.*\sThen$|For\s+\w+\s*=|"
    r"For\s+Each\s+\w+\s+In\s|Do\s+(?:While|Until)\s|REM\s|(?:Set|Const)\s+\w+\s*=|Call\s+\w+\s*\()"
)
_BASIC_AS = re.compile(r"\b[Aa]s\s+(?:New\s+)?(?:Integer|Long|String|Double|Single|Boolean|Object|Variant|Date|"
                       r"Currency|Byte|Any|com\.sun\.\w+)")
_STATEMENT_END = re.compile(r"\)\s*;$|[{}]$|^\}")
_CALL = re.compile(r"^[A-Za-z_$][\w.$]*\((?!\d\w*\))")  # a call or signature, not a manual page: not ls(1)
_OPTION = re.compile(r"^[(\[]?--?[^\W\d_?#]")  # -f, --force, [-v]
_PLACEHOLDER = re.compile(r"[\[\]<>]")  # [OPTION]..., <file>: synopsis placeholders, markup
_CODE_SYMBOLS = {"{", "}", "=", "==", "&&", "||", "*/", "/*", "//", "#", "|", "\\", "$", "=>", "->"}
_ASSIGN = re.compile(r"^[A-Za-z_$][\w.$\[\]]*\s*(?:[-+*/|&]?=|:=)\s*\S")
_OPERATOR = re.compile(r":=|==|!=|->|::|&&|\|\||<<|>>=|\+\+|\+=")
_TABLE_SEPARATOR = re.compile(r"[│┃|]")
_PYTHON = re.compile(r"^(?:from\s+[\w.]+\s+import\s+[\w.*]|import\s+[\w.]+(?:\s+as\s+\w+)?$|"
                     r"(?:def|class)\s+\w+\s*[(:]|(?:elif|while|with)\s.*:$|print\()")
_SHELL = re.compile(r"^for\s+\w+\s+in\s.*;\s*(?:do)?$|^(?:do|done|fi|then|esac|else)$|^(?:if|while|until)\s+\[|"
                    r"^(?:d-i|[a-z][\w-]*)\s+\S+/\S+\s+(?:string|boolean|select|multiselect|note|password|text|seen)\b")
_FONT_STYLE = {"Sans", "Serif", "Mono", "Math", "Symbols", "Emoji", "Kufi", "Naskh", "Nastaliq", "Mincho",
               "Gothic", "Condensed", "SemiCondensed", "ExtraCondensed", "Regular", "Bold", "Italic", "Light",
               "ExtraLight", "Medium", "SemiBold", "ExtraBold", "Black", "Thin", "Oblique", "UI", "CJK"}
_FONT_FAMILY = {"Noto", "DejaVu", "Liberation", "Droid", "Ubuntu", "Source", "Fira", "Roboto", "Cantarell",
                "Lato", "Bitstream", "FreeSans", "FreeSerif", "FreeMono", "Nimbus", "URW", "IPAex", "IPA",
                "WenQuanYi", "AR", "Takao", "VL", "Sawasdee", "Lohit", "Gentium", "Linux", "Open", "Hack", "Inconsolata",
                "Terminus", "Unifont", "Carlito", "Caladea", "Amiri", "Scheherazade", "Padauk", "Abyssinica"}
_LONG_PHRASE = 5  # words (or CJK characters) in a row that make a line prose even when it matches a construct
_PHRASE = 3  # words (or CJK characters) in a row that make a line prose when code and word tokens balance


def _token_kind(token: str) -> str:
    """``word``, ``code`` or ``other`` (pure numbers and punctuation) for one whitespace-separated token."""
    if token in _CODE_SYMBOLS:
        return "code"
    core = token.strip(_EDGE)
    if _CJK.search(core):
        return "word"
    if not core:
        return "other"
    if _CALL.match(token.lstrip(_EDGE)) or _OPTION.match(token):
        return "code"
    if not _LETTER.search(core):
        return "other"
    if _WORD.fullmatch(core) and not _PLACEHOLDER.search(token):
        if _CAMEL.search(core) and not core.isupper():
            return "code"
        return "word"
    return "code"


def _caps_heading(s: str) -> bool:
    """A heading in capitals: every cased character upper-case, at least two letters, at most six tokens, no
    final period unless it is one token (``SIGCHLD.``), no CJK (``COMPATIBILITY 兼容性`` names its section in
    words)."""
    if not s.isupper() or (s.endswith(".") and " " in s) or _CJK.search(s):
        return False
    return len(s.split()) <= 6 and len(_LETTER.findall(s)) >= 2


def _font_line(tokens: list[str]) -> bool:
    """A line of font family names: ``* Noto Sans CJK JP``, ``Noto Serif SemiCondensed ExtraLight``."""
    words = [t.strip(_EDGE) for t in tokens if t.strip(_EDGE)]
    if not words or len(words) > 10 or not all(w[:1].isupper() or w[:1].isdigit() for w in words):
        return False
    return words[0] in _FONT_FAMILY and any(w in _FONT_STYLE for w in words[1:])


def _longest_run(kinds: list[str], tokens: list[str]) -> int:
    """The longest run of consecutive words, a CJK run counting one word per character."""
    best = run = 0
    for kind, tok in zip(kinds, tokens, strict=True):
        cjk = len("".join(_CJK_RUN.findall(tok)))
        if cjk:
            run += cjk
        elif kind == "word":
            run += 1
        else:
            run = 0
        best = max(best, run)
    return best


def is_code_line(line: str) -> bool:
    """Whether a line has no linguistic content (module docstring)."""
    s = line.strip()
    if not s or not _LETTER.search(s):
        return True
    if _caps_heading(s):
        return True
    tokens = s.split()
    body = tokens[1:] if tokens[0] in ("*", "-", "•", "–", "·") and len(tokens) > 1 else tokens
    kinds = [_token_kind(t) for t in body]
    run = _longest_run(kinds, body)
    text = " ".join(body)
    if len(_TABLE_SEPARATOR.findall(text)) >= 2:
        return True  # a table row
    construct = (_C_PREPROCESSOR.match(text) is not None or _C_TYPE_ALONE.match(text) is not None or _C_DECL.match(text) is not None
                 or _C_KEYWORD.match(text) is not None or _BASIC.match(text) is not None
                 or _BASIC_AS.search(text) is not None or _PROMPT.match(text) is not None
                 or _PYTHON.match(text) is not None or _CALL.match(text) is not None or _ASSIGN.match(text) is not None
                 or _OPERATOR.search(text) is not None or _SHELL.match(text) is not None or _font_line(body)
                 or (_STATEMENT_END.search(text) is not None and "code" in kinds))
    if construct:
        return run < _LONG_PHRASE
    n_code = kinds.count("code")
    if n_code == 0 or run >= _PHRASE:
        return False
    n_word = sum(max(1, len("".join(_CJK_RUN.findall(t))) // 2) for t, k in zip(body, kinds, strict=True)
                 if k == "word")
    return n_code >= n_word


def code_line_mask(lines: Sequence[str]) -> np.ndarray:
    """:func:`is_code_line` of each line, as a boolean array."""
    return np.fromiter((is_code_line(x) for x in lines), dtype=bool, count=len(lines))
