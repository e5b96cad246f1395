// Dev-only: regenerates tests/fixtures/tokenizer/{corpus.inp, *.out} with llama.cpp's tokenizer, through the
// prebuilt binaries of the npm package node-llama-cpp (never run by the build or CI).
//
//   LLREF=/tmp/llref node scripts/dev/gen_tokenizer_fixtures.mjs [SHARED_DIR]
//
// LLREF is a folder where `npm install node-llama-cpp` was run; SHARED_DIR defaults to ../shared.
// Files written (format of llama.cpp's own tokenizer tests: inputs separated by "\n__ggml_vocab_test__\n",
// one line of space-separated ids per input, no BOS):
//   corpus.inp                       the hard strings below
//   corpus.mistral-v0.3.out          ids with mistral-v0.3-vocab.gguf, special tokens not parsed
//   corpus.mistral-v0.3.special.out  same, parsing special tokens ("[INST]" -> its control token)
//   corpus.llama-spm.out             ids with ggml-vocab-llama-spm.gguf, special tokens not parsed
import {writeFileSync} from "node:fs";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const shared = path.resolve(process.argv[2] ?? path.join(repo, "../shared"));
const llref = process.env.LLREF ?? "/tmp/llref";
const {getLlama} = await import(pathToFileURL(path.join(llref, "node_modules/node-llama-cpp/dist/index.js")).href);

// Deterministic pseudo-random generator for the long lines.
let seed = 12345;
const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
};
const pick = (arr) => arr[rand(arr.length)];

function longMixedLine(bytes) {
    const words = ["the", "model", "tokenizer", "向量", "量化", "推理", "日本語", "テキスト", "한국어", "текст",
                   "émoji", "😀", "🇨🇳", "x86_64", "3.14159", "(a+b)*c", "—", "«quote»", "naïve", "Straße"];
    let s = "";
    while (Buffer.byteLength(s) < bytes) s += pick(words) + pick([" ", " ", " ", "  ", ", ", ". ", "\t", "，", "。"]);
    return s;
}

const cases = [
    // ---- Chinese ----
    "你好",
    "你好，世界！",
    "请用中文回答：量化模型在推理时为什么更快？",
    "我们的用户用多种语言聊天，参考对话就是中文的。",
    "机器学习（Machine Learning）是人工智能的一个分支。",
    "“引号”、『书名号』、《红楼梦》、【方括号】……——破折号",
    "２０２４年１２月３１日，价格为￥１２３．４５元。",
    "繁體中文與简体中文混排：這個模型支援嗎？",
    "一二三四五六七八九十百千万亿",
    " 前导空格和尾随空格 ",
    "鑫 龘 靐 齉 𠀀 𪚥 𰻞",  // rare CJK incl. supplementary planes
    "中文\n换行\n\n两次换行",
    "代码注释：// 计算平均值\nint avg = sum / n;",
    // ---- Japanese ----
    "こんにちは、世界！",
    "日本語のテキストをトークン化します。",
    "カタカナとひらがなと漢字が混ざった文章です。",
    "ｶﾀｶﾅ半角とｶﾞｷﾞｸﾞ濁点",
    "東京都渋谷区１－２－３　ビル５Ｆ",
    // ---- Korean ----
    "안녕하세요, 세계!",
    "한국어 문장을 토큰화합니다. 잘 될까요?",
    "ㄱㄴㄷㄹ ㅏㅑㅓㅕ 자모만",
    "훈민정음 해례본 ᄒᆞᆫ글 옛한글",
    // ---- Cyrillic and other scripts ----
    "Привет, мир!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Україна, Київ — ґанок, їжак, є.",
    "Љубав и његош — српска ћирилица",
    "Γειά σου Κόσμε! Ελληνικά: αβγδε ΑΒΓΔΕ",
    "مرحبا بالعالم! هذا نص عربي.",
    "שלום עולם! זה טקסט בעברית.",
    "नमस्ते दुनिया! यह हिंदी पाठ है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Tiếng Việt có dấu: Hà Nội, Sài Gòn, người Việt.",
    "Türkçe: ılık, İstanbul, şeker, ğ",
    "Ճանապարհ — Հայերեն, ქართული ენა",
    "Deutsch: Größe, Straße, Äpfel, Öl, Übermut",
    "Français : « déjà vu », garçon, œuvre, naïveté",
    "Español: ¿Qué tal? ¡Muy bien! año, niño",
    "Polski: zażółć gęślą jaźń",
    "e\u0301 vs \u00e9, a\u0308 vs \u00e4 (combining vs precomposed)",
    "Z\u0351\u036b\u0343a\u0310\u0352l\u0357g\u0352o\u0346 text with stacked marks",
    "mixed: English 中文 日本語 한국어 Русский العربية हिन्दी",
    // ---- emoji ----
    "😀",
    "Hello 👋 world 🌍!",
    "👨‍👩‍👧‍👦 family (ZWJ)",
    "👩🏽‍💻 technologist with skin tone",
    "🏳️‍🌈 🏳️‍⚧️ flags with ZWJ",
    "🇨🇳🇺🇸🇯🇵🇰🇷🇩🇪🇫🇷 regional indicator flags",
    "🏴󠁧󠁢󠁥󠁮󠁧󠁿 tag sequence flag",
    "1️⃣ 2️⃣ #️⃣ keycaps",
    "❤️ ❤ ☺️ ☺ variation selectors",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    "🧑‍🤝‍🧑🫶🫠🪿 newer emoji",
    "😀😃😄😁😆😅😂🤣🥲☺️😊😇🙂🙃😉😌😍🥰😘😗",
    // ---- code ----
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "{\"name\": \"kinfer\", \"ids\": [1, 2, 3], \"ok\": true, \"nested\": {\"a\": null}}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "git commit -m \"fix: tokenizer\" && ./build/bin/kinfer_tests -tc='*tok*'",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let v: Vec<u8> = vec![0xFF; 16];\n    Ok(())\n}",
    "regex: ^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$",
    "x = a->b; y = c::d; z = e?.f ?? g; w = h => i;",
    "    indented with four spaces\n\tand a tab\n        and eight",
    "0x7fffffff 0b1010 1e-9 -0.0 3.141592653589793 1,000,000",
    // ---- whitespace ----
    "",
    " ",
    "  ",
    "   ",
    "                ",
    "\t",
    "\t\t\t",
    "\n",
    "\n\n\n",
    "\r\n",
    "line one\r\nline two\r\n",
    "\r",
    "a\rb",
    " \t \n \r\n ",
    "trailing spaces   ",
    "   leading spaces",
    "a  b   c    d     e",
    "tab\tseparated\tvalues\t1\t2\t3",
    "non\u00a0breaking\u00a0space",
    "ideographic\u3000space",
    "zero\u200bwidth\u200bspace and joiner\u200dhere",
    "\ufeffBOM at start",
    "\u2028line separator\u2029paragraph separator",
    // ---- control characters and unusual code points ----
    "\u0000",
    "a\u0000b",
    "\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008",
    "bell\u0007 escape\u001b[31mred\u001b[0m",
    "\u007f delete",
    "\u0080\u0085\u009f C1 controls",
    "\ufffd replacement char",
    "\ue000\uf8ff private use",
    "\uffff\ufffe noncharacters",
    "\u{1d11e} \u{1f600} \u{10ffff} supplementary",
    "\u2581 literal lower one eighth block \u2581\u2581x",
    // ---- text that looks like special tokens ----
    "[INST]",
    "[/INST]",
    "[INST] What is the capital of France? [/INST]",
    "<s>",
    "</s>",
    "<unk>",
    "<s>[INST] hi [/INST] hello</s>",
    "[INST ] [ INST] [inst] [Inst]",
    "[TOOL_CALLS] [AVAILABLE_TOOLS] [/AVAILABLE_TOOLS] [TOOL_RESULTS]",
    "[control_12][control_13][control_99]",
    "<0x41> <0xE4><0xB8><0xAD>",
    "<<SYS>>\nYou are helpful.\n<</SYS>>",
    "<|im_start|>user\nhi<|im_end|>",
    "<|user|>\nhello<|endoftext|>",
    "a[INST]b</s>c<s>d",
    "[INST][INST][/INST][/INST]",
    "</s></s></s>",
    "<s >< /s>",
    "[/INST]回答：好的。</s>",
    // ---- assorted ----
    "Hello world",
    " Hello world",
    "Hello World!",
    "I'm sure you'll've done it, haven't you?",
    "ALLCAPS shouting AND MiXeD cAsE",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "http://example.com/path?q=1&r=%20x#frag",
    "user@example.com, +1 (555) 123-4567",
    "∑ᵢ xᵢ² ≤ ∫₀^∞ e^{−x} dx ≈ 1 ± ε → ∞",
    "½ ¼ ¾ ⅓ ™ © ® § ¶ † ‡ • … ‰",
    "...!!!???,,,;;;:::---___===+++",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ab".repeat(200),
    // ---- long lines (10 kB and more) ----
    longMixedLine(10240),
    "这是一个很长的中文句子，用于测试分词器在长文本上的表现。".repeat(40),
    "x".repeat(2048),
    " ".repeat(300) + "end",
];

const inpSep = "\n__ggml_vocab_test__\n";
for (const [i, c] of cases.entries()) {
    if (c.includes(inpSep)) throw new Error(`case ${i} contains the separator`);
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const out = path.join(repo, "tests/fixtures/tokenizer");
writeFileSync(path.join(out, "corpus.inp"), cases.map((c) => c + inpSep).join(""));

async function writeIds(vocabFile, name, specialTokens) {
    const model = await llama.loadModel({modelPath: path.join(shared, "vocab", vocabFile), vocabOnly: true});
    const lines = cases.map((c) => " " + Array.from(model.tokenize(c, specialTokens)).join(" "));
    writeFileSync(path.join(out, name), lines.join("\n") + "\n");
    await model.dispose();
}
await writeIds("mistral-v0.3-vocab.gguf", "corpus.mistral-v0.3.out", false);
await writeIds("mistral-v0.3-vocab.gguf", "corpus.mistral-v0.3.special.out", true);
await writeIds("ggml-vocab-llama-spm.gguf", "corpus.llama-spm.out", false);
console.log(`wrote ${cases.length} cases to ${out}`);
