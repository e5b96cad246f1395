#include "tools/infer/line_editor.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tokenizer/utf8.hpp"

#if defined(KINFER_HAVE_LIBEDIT)
#include <histedit.h>
#endif

namespace kinfer::cli {

#if defined(KINFER_HAVE_LIBEDIT)

struct LineEditor::Impl {
    explicit Impl(const std::atomic<bool>& flag) : interrupted(flag) {}
    ~Impl() {
        if (el) el_end(el);  // restores the terminal
        if (history_list) history_end(history_list);
    }

    const std::atomic<bool>& interrupted;
    EditLine* el = nullptr;
    History* history_list = nullptr;
    std::string prompt;
    std::string pending;  // bytes read from the terminal but not decoded yet (after an ill-formed sequence)
    int bad_byte = -1;    // the first byte of this line that was not UTF-8
    bool paste_mode = false;
};

namespace {

constexpr wchar_t kReplacement = 0xFFFD;

LineEditor::Impl* impl_of(EditLine* el) {
    void* data = nullptr;
    el_get(el, EL_CLIENTDATA, &data);
    return static_cast<LineEditor::Impl*>(data);
}

char* prompt_text(EditLine* el) {
    return impl_of(el)->prompt.data();
}

uint32_t decode(const uint8_t* p, size_t n) {
    if (n == 1) return p[0];
    uint32_t cp = p[0] & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (p[k] & 0x3F);
    return cp;
}

// libedit's character source (EL_GETCFN): one Unicode character from the terminal, decoded as UTF-8 whatever
// the locale says. Returns 1 with a character, 0 at end of input, -1 on error or Ctrl-C.
int read_character(EditLine* el, wchar_t* out) {
    LineEditor::Impl& self = *impl_of(el);
    uint8_t bytes[4];
    size_t n = 0;
    *out = 0;
    for (;;) {
        if (n > 0) {
            const tokenizer::Utf8Step step = tokenizer::utf8_step(bytes, n);
            if (step.kind == tokenizer::Utf8Step::kValid) {
                *out = static_cast<wchar_t>(decode(bytes, n));
                return 1;
            }
            if (step.kind == tokenizer::Utf8Step::kInvalid) {
                if (self.bad_byte < 0) self.bad_byte = bytes[0];
                // The bytes after the ill-formed part start the next character.
                self.pending.insert(0, reinterpret_cast<const char*>(bytes + step.length), n - step.length);
                *out = kReplacement;
                return 1;
            }
        }
        if (!self.pending.empty()) {
            bytes[n++] = static_cast<uint8_t>(self.pending.front());
            self.pending.erase(0, 1);
            continue;
        }
        if (self.interrupted.load()) {
            errno = EINTR;
            return -1;
        }
        uint8_t byte = 0;
        const ssize_t got = ::read(STDIN_FILENO, &byte, 1);
        if (got == 1) {
            bytes[n++] = byte;
            continue;
        }
        if (got == 0) {
            if (n == 0) return 0;
            if (self.bad_byte < 0) self.bad_byte = bytes[0];  // a character cut short by the end of input
            *out = kReplacement;
            return 1;
        }
        if (errno == EINTR) continue;  // a window resize, say; Ctrl-C is caught above
        return -1;
    }
}

bool ends_with(const std::wstring& s, const std::wstring& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Bound to ESC [ 2 0 0 ~, which a terminal in bracketed-paste mode sends before pasted text (and ESC [ 2 0 1
// ~ after it): the text goes into the line as it is, newlines included, instead of each newline sending a
// line.
unsigned char insert_paste(EditLine* el, int) {
    const std::wstring end_marker = L"\x1b[201~";
    std::wstring raw;
    wchar_t c = 0;
    while (el_wgetc(el, &c) == 1) {  // stops early at end of input or Ctrl-C: keep what arrived
        raw.push_back(c);
        if (ends_with(raw, end_marker)) {
            raw.resize(raw.size() - end_marker.size());
            break;
        }
    }
    std::wstring text;
    for (size_t i = 0; i < raw.size(); ++i) {
        const wchar_t ch = raw[i];
        if (ch == L'\r') {  // terminals paste line ends as CR (or CR LF)
            text.push_back(L'\n');
            if (i + 1 < raw.size() && raw[i + 1] == L'\n') ++i;
        } else if (ch == L'\n' || ch == L'\t' || (ch >= 0x20 && ch != 0x7F)) {
            text.push_back(ch);
        }  // other control characters would only garble the display
    }
    if (!text.empty()) el_winsertstr(el, text.c_str());
    return CC_REFRESH;
}

bool terminal_can_paste() {
    const char* term = std::getenv("TERM");
    return term && *term && std::strcmp(term, "dumb") != 0 && ::isatty(STDERR_FILENO);
}

}  // namespace

std::unique_ptr<LineEditor> LineEditor::create(const std::atomic<bool>& interrupted) {
    auto impl = std::make_unique<Impl>(interrupted);
    // Prompt and echo on stderr: stdout carries only the model's text.
    impl->el = el_init("infer", stdin, stderr, stderr);
    impl->history_list = history_init();
    if (!impl->el || !impl->history_list) return nullptr;
    EditLine* el = impl->el;
    HistEvent ev;
    history(impl->history_list, &ev, H_SETSIZE, 1000);
    history(impl->history_list, &ev, H_SETUNIQUE, 1);
    el_set(el, EL_CLIENTDATA, impl.get());
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_SIGNAL, 1);  // the terminal is restored on Ctrl-C, Ctrl-Z and kill
    el_set(el, EL_PROMPT, prompt_text);
    el_set(el, EL_HIST, history, impl->history_list);
    el_set(el, EL_GETCFN, read_character);
    el_source(el, nullptr);  // the user's ~/.editrc (vi mode, key bindings), as other libedit programs do
    // The wide call keeps the (static) name and help as they are; the narrow one copies and leaks them.
    el_wset(el, EL_ADDFN, L"kinfer-paste", L"insert bracketed-paste text whole", insert_paste);
    el_set(el, EL_BIND, "\033[200~", "kinfer-paste", nullptr);
    impl->paste_mode = terminal_can_paste();
    return std::unique_ptr<LineEditor>(new LineEditor(std::move(impl)));
}

LineEditor::Line LineEditor::read(const std::string& prompt) {
    Impl& self = *impl_;
    self.prompt = prompt;
    self.bad_byte = -1;
    if (self.paste_mode) std::fputs("\x1b[?2004h", stderr);  // only while we read: a reply is no paste target
    int count = 0;
    const char* line = el_gets(self.el, &count);
    if (self.paste_mode) std::fputs("\x1b[?2004l", stderr);
    std::fflush(stderr);
    Line out;
    if (self.interrupted.load()) {
        out.status = Line::Status::Interrupted;
        return out;
    }
    if (!line || count <= 0) return out;  // End: Ctrl-D on an empty line, or the terminal went away
    out.status = Line::Status::Text;
    out.text = line;
    if (!out.text.empty() && out.text.back() == '\n') out.text.pop_back();
    out.bad_byte = self.bad_byte;
    return out;
}

void LineEditor::add_history(const std::string& text) {
    HistEvent ev;
    if (!text.empty()) history(impl_->history_list, &ev, H_ENTER, text.c_str());
}

#else  // no libedit: plain lines (the terminal's own editing)

struct LineEditor::Impl {};

std::unique_ptr<LineEditor> LineEditor::create(const std::atomic<bool>&) {
    return nullptr;
}

LineEditor::Line LineEditor::read(const std::string&) {
    return {};
}

void LineEditor::add_history(const std::string&) {}

#endif

LineEditor::LineEditor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LineEditor::~LineEditor() = default;

}  // namespace kinfer::cli
