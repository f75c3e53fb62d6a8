"""Hard strings for tokenizer parity tests: many scripts, emoji sequences, whitespace runs, code,
numbers, contractions, control characters, special-token text, empty and very long strings."""

SCRIPTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "你好，世界！", "我爱自然语言处理。今天天气很好。", "漢字とひらがなとカタカナ、日本語の文章です。",
    "東京都渋谷区", "안녕하세요, 세계! 한국어 문장입니다.", "한글 자모: ㄱㄴㄷ ㅏㅑㅓ",
    "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "العربية: ١٢٣ ٤٥٦", "שלום עולם", "עִבְרִית עם ניקוד",
    "नमस्ते दुनिया", "हिन्दी में वाक्य। २०२४", "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Привет, мир!", "Съешь же ещё этих мягких французских булок.", "Γειά σου Κόσμε", "Ελληνικά: αβγδε ΑΒΓΔΕ",
    "Ἀρχιμήδης", "Հայերեն", "ქართული ენა", "ᚠᛇᚻ᛫ᛒᛦᚦ", "ትግርኛ አማርኛ", "தமிழ் மொழி", "తెలుగు భాష",
    "ಕನ್ನಡ", "മലയാളം", "বাংলা ভাষা", "ગુજરાતી", "ਪੰਜਾਬੀ", "සිංහල", "ພາສາລາວ", "ភាសាខ្មែរ", "မြန်မာဘာသာ",
    "བོད་ཡིག", "Tiếng Việt có dấu: ắ ằ ẳ ẵ ặ", "Türkçe: ğüşöçıİ", "Polski: zażółć gęślą jaźń",
    "Čeština: příliš žluťoučký kůň", "Français: où est la bibliothèque ?", "Deutsch: Straße, Größe, Äpfel",
    "Español: ¿Dónde está? ¡Aquí!", "Português: ação, coração", "Íslenska: þ ð æ", "Norsk: blåbærsyltetøy",
    "Română: ș ț ă î â", "Ελληνικά και English mixed 中文 mixed", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "e\u0301 vs \u00e9", "a\u0308\u0304 combining stack", "\u0928\u093f\u0930\u094d\u092d\u092f",
    "ﬁ ﬂ ligatures", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "ℌ𝔢𝔩𝔩𝔬 𝕎𝕠𝕣𝕝𝕕", "𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄", "Ⅻ ⅻ Ⅳ ½ ¾ ² ³",
    "㍿ ㈱ ㎏ ㎞", "\u200bzero\u200bwidth\u200b", "soft\u00adhyphen", "nbsp\u00a0here\u00a0\u00a0two",
    "\u2028line\u2029para", "\u3000ideographic\u3000space", "\ufeffBOM at start", "right\u200fto\u200eleft",
    "𓀀𓀁𓀂 hieroglyphs", "𐌰𐌱𐌲 gothic", "🀄 mahjong", "U+FFFD: \ufffd", "private use: \ue000\uf8ff",
]

EMOJI = [
    "😀", "😀😃😄😁", "I ❤️ you", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👨‍👩‍👧‍👦 family", "👩🏽‍💻 coder", "🏳️‍🌈 flag",
    "🇺🇸🇬🇧🇫🇷🇯🇵", "🇩🇪 Germany", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland", "❤️‍🔥", "🧑‍🤝‍🧑", "1️⃣2️⃣3️⃣ keycaps", "#️⃣ *️⃣",
    "☺︎ text vs ☺️ emoji", "🤖🤖🤖🤖🤖🤖🤖🤖", "emoji🙂in🙃words", "👋 hello 🌍 world 🚀", "👁️‍🗨️",
    "🐈‍⬛ black cat", "🫠🫡🫥 new ones", "✅ done ❌ failed ⚠️ warn", "→ ← ↑ ↓ ⇒ ⇔", "★☆✦✧",
]

WHITESPACE = [
    "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "\n\n\n", " \n ", "\t\t\t", " \t \t ",
    "  leading", "trailing  ", "  both  ", "a b  c   d    e", "a\tb\t\tc", "line1\nline2\n\nline4",
    "windows\r\nline\r\nendings\r\n", "mac\rold\rstyle", "mixed \t\n \r\n\t end", "\n\nstart with newlines",
    "end with newlines\n\n", "    indented four", "\tindented tab", "x\u00a0\u00a0y", "a \n b", "a  \n  b",
    "word    \n", " \t\n\r\x0b\x0c", "1  2", "a  1", "  42", "x 12", "12  ab", "hi  !", "hi !!", "  !?",
]

CODE = [
    "def foo(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "#include <stdio.h>\nint main(void) {\n\tprintf(\"hi\\n\");\n\treturn 0;\n}\n",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "const f = async (a, b) => { await g(a ?? b); };", "SELECT id, name FROM users WHERE age >= 18;",
    "<div class=\"main\"><p>Hello &amp; welcome</p></div>", "{\"key\": [1, 2.5, true, null], \"k2\": {}}",
    "x = [i**2 for i in range(10) if i % 2 == 0]", "public static void main(String[] args) {}",
    "if err != nil {\n\treturn fmt.Errorf(\"wrap: %w\", err)\n}", "$ ls -la | grep '^d' > out.txt 2>&1",
    "import numpy as np\nnp.zeros((3, 4), dtype=np.float32)", "a+=1;b-=2;c*=3;d/=4;e%=5;f**=6",
    "std::vector<std::pair<int, std::string>> v{{1, \"a\"}};", "// comment\n/* block */\n# hash",
    "lambda x: x if x else None", "\\begin{equation} E = mc^2 \\end{equation}", "regex: ^[a-z0-9_]+@\\w+\\.com$",
    "https://example.com/path?query=1&b=2#frag", "user@example.org", "C:\\Users\\name\\file.txt",
    "    if (a && b || !c) { x <<= 2; y >>>= 1; }", "<<<<<<< HEAD\n=======\n>>>>>>> branch",
    "```python\nprint('hi')\n```", "||| &&& ::: ;;; ,,, ... ???", "@decorator\nclass A(B, metaclass=M): pass",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456789012345678901234567890", "3.14159", "2.718281828",
    "1,000,000", "1.000.000,00", "-17", "+3", "1e10", "6.022e23", "0xFF", "0b1010", "100%", "$19.99",
    "€5,00", "¥1000", "2024-01-15", "12:34:56", "v1.2.3", "192.168.0.1", "(555) 123-4567", "1/2 3/4",
    "٣٤٥ Arabic-Indic digits", "१२३ Devanagari digits", "一二三 CJK numerals", "①②③", "10^9+7",
    "9999999999999999999999", "0.000001", "1st 2nd 3rd 4th", "abc123def456", "3x + 4y = 12",
]

CONTRACTIONS = [
    "don't", "I'm", "you're", "we've", "he'll", "she'd", "it's", "they're", "I've", "can't",
    "DON'T", "I'M", "YOU'RE", "WE'VE", "HE'LL", "SHE'D", "IT'S", "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D", "rock 'n' roll", "''quoted''", "'''triple'''", "o'clock", "y'all'd've",
    "the dog's bone", "James' book", "it’s curly", "don’t curly", "'", "''", "'x", "a'", "' s",
]

CONTROL = [
    "\x00", "a\x00b", "\x01\x02\x03", "\x07bell", "\x08backspace", "\x1b[31mred\x1b[0m", "\x1f\x1e\x1d\x1c",
    "\x7f", "del\x7fete", "\x0b\x0c", "tab\x09tab", "\x85next line", "".join(chr(c) for c in range(32)),
]

SPECIAL_TEXT = [
    "<|im_start|>user\nhi<|im_end|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>", "text<|endoftext|>more", "<|im_end|><|im_end|>", "<|im_start", "|im_start|>",
    "< |im_start| >", "<|im_start|><|im_start|>x", "a <|im_end|> b", "<s> </s> <unk>", "<|unknown_token|>",
    "<repo_name>x<file_sep>y<filename>z", "<|im_start|>", " <|im_start|> ", "<jupyter_code>print(1)",
]

MISC = [
    "Hello", "hello", "HELLO", "hElLo", "Hello world", " Hello world", "Hello  world", "Hello\nworld",
    "a", "A", "ab", "abc", "I", "i", ".", "..", "...", "....", "!!!", "?!", "—", "–", "…", "«quotes»",
    "“smart quotes”", "„German“", "「Japanese」", "【brackets】", "(parens)", "[brackets]", "{braces}",
    "snake_case_name", "camelCaseName", "PascalCaseName", "kebab-case-name", "SCREAMING_CASE",
    "Mr. Smith went to Washington.", "e.g. i.e. etc.", "U.S.A.", "a.b.c.d", "-- double dash --",
    "tl;dr", "w/o", "and/or", "@mention #hashtag", "#1 best", "50% off!!!", "§ 3.2 ¶ 4", "© ® ™",
    "°C °F", "± × ÷ ≠ ≤ ≥ ∞ √ ∑ ∫", "αβγ ∀x∃y", "ÀÉÎÕÜ àéîõü", "naïve café résumé",
]

LONG = [
    "a" * 1000, " " * 500, "\n" * 300, "ab" * 400, "🤖" * 200, "的" * 500, "1" * 600,
    "The quick brown fox jumps over the lazy dog. " * 60,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 40,
    ("def f(x):\n    return x\n\n" * 50), "-" * 300 + "=" * 300, "مرحبا " * 200, "x" * 5000 + " y",
]

CORPUS = (SCRIPTS + EMOJI + WHITESPACE + CODE + NUMBERS + CONTRACTIONS + CONTROL + SPECIAL_TEXT +
          MISC + LONG)
