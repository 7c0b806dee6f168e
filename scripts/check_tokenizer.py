#!/usr/bin/env python3
"""Compares our tokenizer with an independent reference on many strings.

The reference is Hugging Face `tokenizers` configured as SmolLM2's tokenizer.json is: a byte-level
BPE model built from the GGUF file's own tokens and merges, the pre-tokenizer sequence
Digits(individual_digits) + ByteLevel(GPT-2 regex, no prefix space), and the control tokens added
as special tokens. That is the tokenizer llama.cpp's `smollm` pre-tokenizer reproduces.

usage: check_tokenizer.py MAKE_TEST_MODEL MODEL.gguf [--print-pins]
  --print-pins  print C++ initializers for these strings' ids under this reference
Exit status: 0 match, 1 mismatch, 77 skipped (model file, gguf or tokenizers missing).
"""
import json
import os
import random
import subprocess
import sys
import tempfile

SKIP = 77

# The first 19 strings pinned in tests/model/tokenizer_real_test.cpp (whose ids were checked against
# llama.cpp's llama-tokenize; the test file holds more pins than this list).
PINNED = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "multiple   spaces\tand\ttabs",
    "line one\nline two\n\n\nline five\n",
    "12345",
    "Pi is 3.14159 and 1,000,000 is a million.",
    "I'm sure it's fine, isn't it? We'll see what they've done; you'd like it.",
    "IT'S LOUD AND YOU'RE LATE",
    "Punctuation!!! (brackets) [square] {curly} <angle> \"quotes\" 'single' -- dash... end?!",
    "café naïve résumé",
    "日本語のテキスト",
    "emoji: 😀👍🏽 🚀",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "def f(x):\n    return x ** 2  # square\n",
    "",
]


def reference_tokenizer(model):
    import gguf  # noqa: PLC0415
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers  # noqa: PLC0415

    reader = gguf.GGUFReader(model)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = reader.fields["tokenizer.ggml.merges"].contents()
    vocab = {t: i for i, t in enumerate(tokens)}
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges])
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [tokens[i] for i, t in enumerate(types) if t in (3, 4)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def random_strings(seed, count):
    rng = random.Random(seed)
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 4 + list("0123456789") * 2 +
                list(" \t\n\r.,;:!?'\"-_()[]{}<>/\\@#$%^&*+=|~`") * 2 + list("    \n\n") * 3 +
                ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "é", "ß", "Ω", "日", "本", "٣", "½", "Ⅻ",
                 "\u00a0", "\u2003", "\u3000", "😀", "🏽", "\u200d", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
                 " the", " and", "ing", "tion", "ation"])
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__)
        return 2
    tool, model = args
    if not os.path.exists(model):
        print(f"SKIP: {model} is absent (scripts/fetch-model.sh downloads it)")
        return SKIP
    try:
        ref = reference_tokenizer(model)
    except ImportError as e:
        print(f"SKIP: a reference package is missing ({e}); pip install gguf tokenizers")
        return SKIP

    strings = PINNED + random_strings(1234, 3000)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(strings, f)
        path = f.name
    try:
        ours = json.loads(subprocess.run([tool, "tokenize", model, path], check=True, capture_output=True).stdout)
    finally:
        os.unlink(path)

    failures = 0
    for s, got in zip(strings, ours):
        want = ref.encode(s, add_special_tokens=False).ids
        if got != want:
            failures += 1
            if failures <= 10:
                print(f"MISMATCH for {s!r}:\n  ours {got}\n  ref  {want}")
    if "--print-pins" in sys.argv:
        for s in PINNED:
            ids = ref.encode(s, add_special_tokens=False).ids
            print(f"    {{{json.dumps(s, ensure_ascii=False)}, {{{', '.join(map(str, ids))}}}}},")
    if failures:
        print(f"FAILED: {failures} of {len(strings)} strings tokenize differently")
        return 1
    print(f"OK: {len(strings)} strings tokenize exactly as the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
