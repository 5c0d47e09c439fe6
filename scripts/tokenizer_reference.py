#!/usr/bin/python3
"""Independent reference for Octet's WordPiece tokenizer (standard library only).

A separate implementation of Hugging Face's slow BertTokenizer, written from its algorithm
(transformers/models/bert/tokenization_bert.py: BasicTokenizer + WordpieceTokenizer, and
tokenization_utils_base.truncate_sequences with "longest_first"). Octet's C++ tokenizer is tested
against what this script writes; nothing here is shared with the C++ code.

Usage (run with Debian's interpreter, /usr/bin/python3):
  tokenizer_reference.py --cases             rewrite tests/fixtures/tokenizer/{cases.jsonl,
                                             cased_vocab.txt}
  tokenizer_reference.py --golden OUT        tokenize the GLUE dev sets into OUT/tokenizer/*.jsonl
                                             and write the per-code-point probe OUT/tokenizer/
                                             codepoints.jsonl
  [--data DIR]                               shared data root (default $OCTET_DATA or
                                             <repo>/../shared/data)
"""

import argparse
import json
import os
import random
import sys
import unicodedata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "tokenizer")


# ---- Hugging Face BertTokenizer, re-derived ------------------------------------------------

def load_vocab(path):
    """Token -> id, id = 0-based line. Text mode splits on \\n, \\r\\n and \\r; a token seen
    twice keeps its last id (a dict assignment per line)."""
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        for index, line in enumerate(f.readlines()):
            vocab[line.rstrip("\n")] = index
    return vocab


def is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


CJK_RANGES = [
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
]


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


class Basic:
    def __init__(self, lower_case=True, strip_accents=None, tokenize_chinese_chars=True):
        self.lower_case = lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars

    def tokenize(self, text):
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or is_control(ch):
                continue
            cleaned.append(" " if is_whitespace(ch) else ch)
        text = "".join(cleaned)
        if self.tokenize_chinese_chars:
            text = "".join(f" {ch} " if is_cjk(ord(ch)) else ch for ch in text)
        text = unicodedata.normalize("NFC", text)
        pieces = []
        for word in text.split():
            if self.lower_case:
                word = word.lower()
                if self.strip_accents is not False:
                    word = strip_accents(word)
            elif self.strip_accents:
                word = strip_accents(word)
            pieces.extend(split_punctuation(word))
        return " ".join(pieces).split()


def strip_accents(word):
    return "".join(ch for ch in unicodedata.normalize("NFD", word)
                   if unicodedata.category(ch) != "Mn")


def split_punctuation(word):
    out, current = [], []
    for ch in word:
        if is_punctuation(ch):
            if current:
                out.append("".join(current))
                current = []
            out.append(ch)
        else:
            current.append(ch)
    if current:
        out.append("".join(current))
    return out


class WordPiece:
    def __init__(self, vocab, unk="[UNK]", max_chars=100):
        self.vocab, self.unk, self.max_chars = vocab, unk, max_chars

    def tokenize(self, word):
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in self.vocab:
                    found = candidate
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces


class Tokenizer:
    def __init__(self, vocab_path, lower_case=True, strip_accents=None,
                 tokenize_chinese_chars=True, max_chars=100):
        self.vocab = load_vocab(vocab_path)
        self.basic = Basic(lower_case, strip_accents, tokenize_chinese_chars)
        self.wordpiece = WordPiece(self.vocab, max_chars=max_chars)

    def tokens(self, text):
        return [p for w in self.basic.tokenize(text) for p in self.wordpiece.tokenize(w)]

    def ids(self, text):
        return [self.vocab[t] for t in self.tokens(text)]

    def encode(self, a, b=None, max_length=None):
        ids_a = self.ids(a)
        ids_b = self.ids(b) if b is not None else None
        specials = 2 if ids_b is None else 3
        if max_length is not None:
            remove = len(ids_a) + (len(ids_b) if ids_b is not None else 0) + specials - max_length
            for _ in range(max(remove, 0)):
                if ids_b is None or len(ids_a) > len(ids_b):
                    ids_a = ids_a[:-1]
                else:
                    ids_b = ids_b[:-1]
        cls, sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        input_ids = [cls] + ids_a + [sep]
        types = [0] * len(input_ids)
        if ids_b is not None:
            input_ids += ids_b + [sep]
            types += [1] * (len(ids_b) + 1)
        return input_ids, types


# ---- Fixture: curated cases -----------------------------------------------------------------

# A small cased vocabulary: cased and accented entries, continuations, NFC-composed forms.
CASED_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    ".", ",", "!", "?", "'", "-", "(", ")", "\"", ":", "«", "»", "¿",
    "The", "the", "Cafe", "Café", "café", "cafe", "naïve", "naive", "Naïve", "über", "Über",
    "uber", "Uber", "##s", "##es", "##ing", "##ed", "##é", "##e", "run", "Run", "RUN", "play",
    "Play", "##er", "##ers", "New", "York", "new", "york", "Straße", "strasse", "ß", "##ß",
    "Ω", "ω", "Σ", "σ", "ς", "ΟΔΟΣ", "οδος", "οδοσ", "Ἀθῆναι", "αθηναι",
    "中", "国", "日本", "語", "한", "국", "##국", "##어", "Å", "ἀθῆναι", "Ångström", "angstrom",
    "K", "k",
    "İstanbul", "istanbul", "i̇stanbul", "ﬁ", "fi", "##fi", "São", "Paulo", "sao",
    "1", "2", "##3", "12", "##5", "42", "a", "b", "c", "##a", "##b", "##c", "A", "B", "C",
]


def write_cased_vocab():
    path = os.path.join(FIXTURES, "cased_vocab.txt")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for t in CASED_VOCAB:
            f.write(t + "\n")
    return path


LONG_WORD = "a" * 101
LONG_OK = "a" * 100
PARA = ("The quick brown fox jumps over the lazy dog. " * 6).strip()

# (name, vocab, options, text_a, text_b, max_lengths)
# options: lower_case, strip_accents, tokenize_chinese_chars, max_chars.
CASES = [
    ("simple_sentence", "uncased", {}, "Hello, world! This is a test.", None, []),
    ("empty", "uncased", {}, "", None, [2, 8]),
    ("whitespace_only", "uncased", {}, " \t\n\r\u00a0\u3000 ", None, [2]),
    ("accents", "uncased", {}, "Café naïve résumé Ångström Zoë Dvořák façade", None, []),
    ("accents_decomposed", "uncased", {}, "Cafe\u0301 nai\u0308ve", None, []),
    ("accents_kept_lower", "uncased", {"strip_accents": False},
     "Café naïve résumé Ångström", None, []),
    ("uppercase", "uncased", {}, "THE QUICK BROWN FOX", None, []),
    ("mixed_case_contractions", "uncased", {}, "I don't think it's John's car, isn't it?",
     None, []),
    ("numbers", "uncased", {}, "In 1998, 3.14159 and 1,000,000 people paid $42.50 (or 15%).",
     None, []),
    ("ascii_punct_all", "uncased", {},
     "a!b\"c#d$e%f&g'h(i)j*k+l,m-n.o/p:q;r<s=t>u?v@w[x\\y]z^_`{|}~", None, []),
    ("unicode_punct", "uncased", {}, "“Quoted” — dash… «guillemets» ¿qué? ¡sí! 【括弧】 ‘single’",
     None, []),
    ("symbols_not_punct", "uncased", {}, "5 € and 3 £, 2 × 3 ÷ 1 ± 0 © ® ™ ° §", None, []),
    ("cjk", "uncased", {}, "我爱北京天安门 and 日本語のテキスト", None, []),
    ("cjk_no_split", "uncased", {"tokenize_chinese_chars": False}, "我爱北京 hello日本", None, []),
    ("korean", "uncased", {}, "한국어 텍스트", None, []),
    ("mixed_scripts", "uncased", {}, "English Русский Ελληνικά עברית العربية हिन्दी ไทย",
     None, []),
    ("greek_final_sigma", "uncased", {}, "ΟΔΟΣ ΟΔΟΣ. ΣΑΣ Σ ΑΣ'", None, []),
    ("turkish_dotted_i", "uncased", {}, "İstanbul İ", None, []),
    ("emoji", "uncased", {}, "I love it 😀👍🏽 so much ❤️ 👨‍👩‍👧", None, []),
    ("control_chars", "uncased", {}, "a\x00b\x01c\x7fd\u0085e\x0bf\x0cg", None, []),
    ("zero_width", "uncased", {}, "zero\u200bwidth\u200cjoin\u200d\ufeffbom\u00adsoft\u2060",
     None, []),
    ("replacement_char", "uncased", {}, "bad\ufffdbyte \ufffd", None, []),
    ("private_use_and_unassigned", "uncased", {}, "x\ue000y\U000f0000z\u0378w", None, []),
    ("line_separators", "uncased", {}, "one\u2028two\u2029three\u1680four\u2003five", None, []),
    ("tabs_newlines", "uncased", {}, "tab\there\nnewline\r\ncrlf", None, []),
    ("very_long_word", "uncased", {}, f"short {LONG_WORD} end", None, []),
    ("long_word_at_limit", "uncased", {}, f"{LONG_OK} x", None, []),
    ("long_word_accented", "uncased", {}, "é" * 101 + " " + "é" * 100, None, []),
    ("max_chars_option", "uncased", {"max_chars": 5}, "tiny small larger enormous", None, []),
    ("no_vocab_match", "uncased", {}, "qzxjvk ☃ ⚛ ᚠᚢᚦ xqzqzx", None, []),
    ("wordpiece_splits", "uncased", {},
     "unaffable tokenization preprocessing incomprehensibilities", None, []),
    ("fullwidth", "uncased", {}, "Ｈｅｌｌｏ，ｗｏｒｌｄ！ １２３", None, []),
    ("combining_only", "uncased", {}, "\u0301\u0302 a\u0301", None, []),
    ("compat_ideograph", "uncased", {}, "\uf900\uf901 x\U0002f800y", None, []),
    ("ligatures", "uncased", {}, "ﬁnance ﬂow Ǆ ǅ", None, []),
    ("pair_basic", "uncased", {}, "How old are you?", "I am six years old.", [128]),
    ("pair_empty_b", "uncased", {}, "Only the first sentence.", "", [128, 5]),
    ("pair_empty_both", "uncased", {}, "", "", [3, 10]),
    ("truncate_a_only", "uncased", {}, PARA, "Short.", [3, 4, 10, 20, 40]),
    ("truncate_b_only", "uncased", {}, "Short.", PARA, [3, 4, 10, 20, 40]),
    ("truncate_both", "uncased", {}, PARA, PARA + " Extra words here.",
     [3, 4, 5, 6, 7, 11, 20, 33, 64]),
    ("truncate_equal", "uncased", {}, "one two three four", "five six seven eight",
     [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    ("truncate_single", "uncased", {}, PARA, None, [2, 3, 5, 16, 200]),
    ("truncate_inside_word", "uncased", {}, "incomprehensibilities", "unaffable",
     [4, 5, 6, 7, 8]),
    # Cased vocabulary.
    ("cased_basic", "cased", {"lower_case": False}, "The Café, the café. New York!", None, []),
    ("cased_nfc", "cased", {"lower_case": False},
     "Cafe\u0301 Cafe nai\u0308ve A\u030angstro\u0308m", None, []),
    ("cased_strip", "cased", {"lower_case": False, "strip_accents": True},
     "Café naïve Über São", None, []),
    ("cased_lower_keep_accents", "cased", {"lower_case": True, "strip_accents": False},
     "CAFÉ Naïve ÜBER Straße", None, []),
    ("cased_wordpiece", "cased", {"lower_case": False}, "Runs Players played running RUN",
     None, []),
    ("cased_unknown", "cased", {"lower_case": False}, "Unknown words 123 425", None, []),
    ("cased_greek", "cased", {"lower_case": False}, "ΟΔΟΣ Ω Ἀθῆναι", None, []),
    ("cased_greek_lower", "cased", {"lower_case": True, "strip_accents": False},
     "ΟΔΟΣ Ἀθῆναι", None, []),
    ("cased_turkish", "cased", {"lower_case": True, "strip_accents": False}, "İstanbul", None, []),
    ("cased_compat", "cased", {"lower_case": False}, "ﬁ Ω K Å", None, []),
    ("cased_hangul_jamo", "cased", {"lower_case": False}, "\u1112\u1161\u11ab\u1100\u116e\u11a8",
     None, []),
    ("cased_cjk", "cased", {"lower_case": False}, "中国日本語", None, []),
    ("cased_pair", "cased", {"lower_case": False}, "The Café", "New York!", [5, 6, 32]),
]


def make_tokenizer(vocab_kind, options, data_dir, cased_vocab):
    path = os.path.join(data_dir, "vocab", "vocab.txt") if vocab_kind == "uncased" else cased_vocab
    return Tokenizer(path, lower_case=options.get("lower_case", True),
                     strip_accents=options.get("strip_accents"),
                     tokenize_chinese_chars=options.get("tokenize_chinese_chars", True),
                     max_chars=options.get("max_chars", 100))


def write_cases(data_dir):
    os.makedirs(FIXTURES, exist_ok=True)
    cased_vocab = write_cased_vocab()
    path = os.path.join(FIXTURES, "cases.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for name, vocab_kind, options, a, b, max_lengths in CASES:
            tok = make_tokenizer(vocab_kind, options, data_dir, cased_vocab)
            record = {
                "name": name, "vocab": vocab_kind, "options": options, "text_a": a,
                "text_b": b, "words_a": tok.basic.tokenize(a), "tokens_a": tok.tokens(a),
                "ids_a": tok.ids(a),
            }
            if b is not None:
                record.update(words_b=tok.basic.tokenize(b), tokens_b=tok.tokens(b),
                              ids_b=tok.ids(b))
            record["encodings"] = []
            for m in max_lengths:
                ids, types = tok.encode(a, b, m)
                record["encodings"].append({"max_length": m, "input_ids": ids,
                                            "token_type_ids": types})
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(CASES)} cases to {path}")


# ---- Golden: GLUE dev sets and a per-code-point probe -----------------------------------------

def read_tsv(path, skip_header):
    with open(path, "r", encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows = []
    for number, line in enumerate(lines, start=1):
        if number == 1 and skip_header:
            continue
        line = line[:-1] if line.endswith("\r") else line
        if number == 1:
            line = line.lstrip("\ufeff")
        rows.append((number, line.split("\t")))
    return rows


# (output name, file, header?, column a, column b or None)
GLUE = [
    ("sst2", "glue/SST-2/dev.tsv", True, 0, None),
    ("cola", "glue/CoLA/dev.tsv", False, 3, None),
    ("mrpc", "glue/MRPC/dev.tsv", True, 3, 4),
    ("stsb", "glue/STS-B/dev.tsv", True, 7, 8),
    ("rte", "glue/RTE/dev.tsv", True, 0, 1),
]
GOLDEN_MAX_LENGTH = 128


def write_golden(out_dir, data_dir):
    out = os.path.join(out_dir, "tokenizer")
    os.makedirs(out, exist_ok=True)
    tok = Tokenizer(os.path.join(data_dir, "vocab", "vocab.txt"))
    for name, rel, header, col_a, col_b in GLUE:
        rows = read_tsv(os.path.join(data_dir, rel), header)
        with open(os.path.join(out, name + ".jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for number, cols in rows:
                a = cols[col_a]
                b = cols[col_b] if col_b is not None else None
                ids, types = tok.encode(a, b, GOLDEN_MAX_LENGTH)
                record = {"line": number, "text_a": a, "text_b": b, "ids_a": tok.ids(a),
                          "ids_b": tok.ids(b) if b is not None else None,
                          "max_length": GOLDEN_MAX_LENGTH, "input_ids": ids,
                          "token_type_ids": types}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"tokenizer: {name}: {len(rows)} examples")
    write_codepoints(out)
    write_random(out, data_dir)


# BasicTokenizer of "X" + chr(cp) + "y" under three option sets, for every assigned code point
# that is not private use; the rest (categories Cn, Co, Cs) are listed as ranges, since Hugging
# Face drops them all. The C++ test compares each line and explains every difference by the
# Unicode versions of Python's unicodedata and utf8proc.
PROBE_MODES = [
    ("uncased", Basic(True, None)),
    ("cased", Basic(False, None)),
    ("lower_keep_accents", Basic(True, False)),
]


def write_codepoints(out):
    path = os.path.join(out, "codepoints.jsonl")
    dropped, start = [], None
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps({"unicode_version": unicodedata.unidata_version,
                            "modes": [m for m, _ in PROBE_MODES]}) + "\n")
        for cp in range(0x110001):
            cat = unicodedata.category(chr(cp)) if cp <= 0x10FFFF else "end"
            if cat in ("Cn", "Co", "Cs"):
                if start is None:
                    start = cp
                continue
            if start is not None:
                dropped.append([start, cp - 1])
                start = None
            if cp > 0x10FFFF:
                break
            probe = "X" + chr(cp) + "y"
            f.write(json.dumps([cp, cat] + [b.tokenize(probe) for _, b in PROBE_MODES],
                               ensure_ascii=False) + "\n")
        f.write(json.dumps({"dropped_ranges": dropped}) + "\n")


# Random strings over an alphabet chosen to stress the interactions: combining marks after every
# kind of base (NFC, accent stripping, offsets), Hangul syllables and conjoining jamo, Greek sigma
# in every position, dotted capital I, CJK next to letters, punctuation, dropped characters and
# unusual whitespace. Same seed, same file.
RANDOM_POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
    + list(" " * 20) + list(".,;:!?'\"-()[]{}#$%&*+/<=>@^_`|~")
    + list("éèêëàâäôöûüçñÉÈÀÖÜÇÑåÅøØæßẞœ")
    + [chr(c) for c in range(0x300, 0x370)]
    + list("ΣσςΑΒΓΔΟαβγδοάέήίόύώΆΈΉ") + list("İıŞşĞğ") + list("ДжЖйЙёЁ")
    + list("한국어텍스트") + [chr(c) for c in (0x1100, 0x1112, 0x1161, 0x1162, 0x11A8, 0x11AB)]
    + list("中国日本語北京豈") + ["\U0002f800", "\uf900"]
    + list("“”‘’—…«»¿¡【】・。、") + list("€£×÷©®™°§")
    + ["\x00", "\x01", "\x7f", "\u0085", "\u200b", "\u200d", "\ufeff", "\u00ad", "\ufffd",
       "\ue000", "\u0378", "\t", "\n", "\r", "\u00a0", "\u2028", "\u3000", "\u1680"]
    + list("😀👍🏽❤️") + list("ＡＢｃｄ１２！") + list("ﬁﬂǄǅǆΩKÅ")
)


def write_random(out, data_dir):
    rng = random.Random(20261122)
    vocab = os.path.join(data_dir, "vocab", "vocab.txt")
    modes = [("uncased", Tokenizer(vocab)), ("cased", Tokenizer(vocab, lower_case=False)),
             ("lower_keep_accents", Tokenizer(vocab, lower_case=True, strip_accents=False)),
             ("no_cjk", Tokenizer(vocab, tokenize_chinese_chars=False))]
    path = os.path.join(out, "random.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(3000):
            text = "".join(rng.choice(RANDOM_POOL) for _ in range(rng.randint(0, 40)))
            for name, tok in modes:
                f.write(json.dumps({"mode": name, "text": text,
                                    "words": tok.basic.tokenize(text), "ids": tok.ids(text)},
                                   ensure_ascii=False) + "\n")
    print(f"tokenizer: random: 3000 strings x {len(modes)} option sets")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", action="store_true")
    parser.add_argument("--golden", metavar="OUT")
    parser.add_argument("--data", default=os.environ.get("OCTET_DATA") or
                        os.path.join(REPO, "..", "shared", "data"))
    args = parser.parse_args()
    if not args.cases and not args.golden:
        parser.error("nothing to do: pass --cases and/or --golden OUT")
    if not os.path.isfile(os.path.join(args.data, "vocab", "vocab.txt")):
        sys.exit(f"tokenizer_reference: no vocab/vocab.txt under {args.data} (set OCTET_DATA)")
    if args.cases:
        write_cases(args.data)
    if args.golden:
        write_golden(args.golden, args.data)


if __name__ == "__main__":
    main()
