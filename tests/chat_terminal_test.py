#!/usr/bin/env python3
"""`infer chat` in a real terminal, driven as a person would: tmux is the terminal (it draws the screen that
we read back with capture-pane), send-keys types. Checks what the screen shows and, through --verbose's echo
of each user message, exactly what the model received; then the same messages sent through a pipe must give
the model the same input and the same replies.

usage: chat_terminal_test.py INFER_BINARY VOCAB_GGUF          (run by ctest; needs tmux and Python 3)
CHAT_TEST_TIMEOUT=SECONDS changes how long each wait may take (default 30).
Every wait has a deadline, and keys are sent only once the screen shows the prompt, so timing cannot make
it flaky; the tmux server and the scratch folder are removed at the end whatever happens.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT = float(os.environ.get("CHAT_TEST_TIMEOUT", "30"))  # seconds for any one thing to show up (ASan builds are slow)
ECHO = re.compile(r'^user: (".*") \((\d+) characters, (\d+) bytes; the prompt is (\d+) tokens\)$')
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


class Terminal:
    """One tmux server (own socket, no config) holding the panes of this test."""

    def __init__(self, folder):
        self.socket = os.path.join(folder, "tmux.sock")

    def tmux(self, *args):
        r = subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", "-u", *args],
                           capture_output=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError("tmux %s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
        return r.stdout.decode("utf-8", errors="replace")

    def stop(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=20)


class Pane:
    def __init__(self, terminal, name, command):
        self.t, self.name = terminal, name
        terminal.tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40", command)
        terminal.tmux("set-option", "-t", name, "remain-on-exit", "on")

    def screen(self):
        """Everything the pane showed, scrollback included, wrapped lines joined."""
        return self.t.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", self.name)

    def cursor(self):
        x, y = self.t.tmux("display", "-p", "-t", self.name, "#{cursor_x} #{cursor_y}").split()
        line = self.t.tmux("capture-pane", "-p", "-t", self.name, "-S", y, "-E", y).rstrip("\n")
        return int(x), line.rstrip()

    def echoes(self):
        """The user messages the model got (from --verbose), with the prompt size in tokens."""
        out = []
        for line in self.screen().splitlines():
            m = ECHO.match(line.rstrip())
            if m:
                out.append((json.loads(m.group(1)), int(m.group(4))))
        return out

    def wait(self, condition, what):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise RuntimeError("timed out waiting for %s; the screen:\n%s" % (what, self.screen()))

    def wait_line(self, text, x=None):
        """Until the cursor's line reads `text` (and the cursor is at column x, when given)."""
        def ok():
            cx, line = self.cursor()
            return line == text and (x is None or cx == x)
        self.wait(ok, "the line %r (cursor at %s)" % (text, x))

    def wait_prompt(self, echoes=None):
        """Until the empty prompt is shown, after `echoes` messages reached the model."""
        self.wait(lambda: (echoes is None or len(self.echoes()) == echoes) and self.cursor() == (2, ">"),
                  "the prompt after %s messages" % echoes)

    def type(self, text):
        self.t.tmux("send-keys", "-t", self.name, "-l", text)

    def keys(self, *names):
        self.t.tmux("send-keys", "-t", self.name, *names)

    def exit_status(self):
        def dead():
            return self.t.tmux("display", "-p", "-t", self.name, "#{pane_dead}#{pane_dead_status}").strip()
        self.wait(lambda: len(dead()) > 1, "the program to end")
        status = int(dead()[1:])
        if status != 0:
            print(self.screen())
        return status


# The sanitizer settings of the ASan+UBSan build (scripts/test.sh) reach the program; nothing else does.
SANITIZER_ENV = {k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}


def chat_command(infer, model, folder, out, env, flags):
    sanitizers = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in SANITIZER_ENV.items())
    return "exec env -i PATH=/usr/bin:/bin HOME=%s OMP_NUM_THREADS=1 TERM=screen %s %s %s chat -m %s %s > %s" % (
        shlex.quote(folder), sanitizers, env, shlex.quote(infer), shlex.quote(model), flags, shlex.quote(out))


def editing_session(term, infer, model, folder):
    """Typing, editing, history, paste, continuation, a bad byte, Ctrl-C at the prompt, Ctrl-D; in the C
    locale, where libedit alone would drop every non-ASCII character."""
    out = os.path.join(folder, "replies.txt")
    flags = "--temp 0 -n 6 --seed 1 --verbose"
    pane = Pane(term, "edit", chat_command(infer, model, folder, out, "LANG=C LC_ALL=C", flags))
    pane.wait_prompt(0)

    pane.type("你好，请扮演诗人")
    pane.wait_line("> 你好，请扮演诗人", x=2 + 2 * 8)  # eight double-width characters
    pane.keys("Enter")
    pane.wait_prompt(1)
    check(pane.echoes()[0][0] == "你好，请扮演诗人", "Chinese typed at the prompt reaches the model whole")

    # Backspace and the arrows move over whole characters, whatever their width or byte count.
    pane.type("你好abc")
    pane.keys("BSpace", "BSpace")
    pane.wait_line("> 你好a", x=7)
    pane.keys("Left", "Left")
    pane.wait_line("> 你好a", x=4)  # between 你 and 好
    pane.type("们")
    pane.keys("End")
    pane.type("🙂 ok")
    pane.keys("Home")
    pane.type("Grüße, こんにちは ")
    pane.wait_line("> Grüße, こんにちは 你们好a🙂 ok")
    pane.keys("BSpace", "End")  # the cursor was just before 你: delete the space there
    pane.wait_line("> Grüße, こんにちは你们好a🙂 ok")
    pane.keys("Enter")
    pane.wait_prompt(2)
    check(pane.echoes()[1][0] == "Grüße, こんにちは你们好a🙂 ok",
          "an edited line (Backspace, Left, Home, End over CJK, accents, emoji) reaches the model as shown")

    # History: up twice recalls the first message, down goes back, up again, Enter sends it.
    pane.keys("Up")
    pane.wait_line("> Grüße, こんにちは你们好a🙂 ok")
    pane.keys("Up")
    pane.wait_line("> 你好，请扮演诗人", x=18)
    pane.keys("Down")
    pane.wait_line("> Grüße, こんにちは你们好a🙂 ok")
    pane.keys("Up")
    pane.wait_line("> 你好，请扮演诗人")
    pane.keys("Enter")
    pane.wait_prompt(3)
    check(pane.echoes()[2][0] == "你好，请扮演诗人", "a line recalled with the up arrow is sent again intact")

    # A multi-line paste (the terminal brackets it) stays one message until Enter.
    pasted = "第一行 こんにちは\n第二行 🙂\nthird line"
    term.tmux("set-buffer", "-b", "paste", pasted)
    term.tmux("paste-buffer", "-p", "-d", "-b", "paste", "-t", "edit")
    pane.wait_line("third line")
    check("> 第一行 こんにちは\n第二行 🙂\nthird line" in pane.screen(), "the pasted lines show as they are")
    check(len(pane.echoes()) == 3, "pasted newlines do not send the message")
    pane.keys("Enter")
    pane.wait_prompt(4)
    check(pane.echoes()[3][0] == pasted, "a pasted multi-line text reaches the model whole")

    # A trailing backslash continues the message on the next line.
    pane.type("Grüße, \\")
    pane.keys("Enter")
    pane.wait_line("...", x=4)
    pane.type("二行目")
    pane.keys("Enter")
    pane.wait_prompt(5)
    check(pane.echoes()[4][0] == "Grüße, \n二行目", "a line ending in a backslash goes on on the next one")

    # A byte that is not UTF-8 shows as U+FFFD and the message is not sent.
    pane.type("A")
    pane.keys("-H", "e9")
    pane.type("B")
    pane.wait_line("> A\ufffdB")
    pane.keys("Enter")
    pane.wait(lambda: "message not sent: the terminal sent a byte that is not UTF-8 (0xE9" in pane.screen(),
              "the note on the bad byte")
    pane.wait_prompt(5)

    # Ctrl-C at the prompt drops the line; the next one is sent alone.
    pane.type("dropped 丢弃")
    pane.wait_line("> dropped 丢弃")
    pane.keys("C-c")
    pane.wait_prompt(5)
    pane.type("ok 好")
    pane.keys("Enter")
    pane.wait_prompt(6)
    check(pane.echoes()[5][0] == "ok 好", "Ctrl-C at the prompt drops the line being typed")

    pane.keys("C-d")
    check(pane.exit_status() == 0, "Ctrl-D at the prompt ends the chat with status 0")
    screen = pane.screen()
    check("error" not in screen and "warning" not in screen, "no error or warning on the screen")
    terminal_echoes = pane.echoes()

    # The same messages through a pipe: the model must get the same texts, prompts and give the same replies.
    script = "".join(text.replace("\n", "\\\n") + "\n" for text, _ in terminal_echoes)
    piped = subprocess.run([infer, "chat", "-m", model] + flags.split(), input=script.encode(),
                           capture_output=True, timeout=120,
                           env=dict(SANITIZER_ENV, OMP_NUM_THREADS="1", PATH="/usr/bin:/bin"))
    check(piped.returncode == 0, "the piped chat succeeds")
    piped_echoes = [(json.loads(m.group(1)), int(m.group(4))) for m in
                    (ECHO.match(line) for line in piped.stderr.decode().splitlines()) if m]
    check(piped_echoes == terminal_echoes, "terminal and pipe give the model the same messages and prompts")
    with open(out, "rb") as f:
        check(f.read() == piped.stdout, "terminal and pipe give the same replies")


def interrupt_session(term, infer, model, folder):
    """Ctrl-C during a reply stops it and the chat goes on; in a UTF-8 locale."""
    out = os.path.join(folder, "endless.txt")
    # No token limit and a context that shifts: only Ctrl-C ends these replies.
    flags = "--temp 0 -n -1 --ctx 64 --context-shift --verbose"
    pane = Pane(term, "stop", chat_command(infer, model, folder, out, "LANG=C.UTF-8", flags))
    pane.wait_prompt(0)
    for n, text in enumerate(["写一首诗 🍂", "再来一首"], start=1):
        pane.type(text)
        pane.keys("Enter")
        size = os.path.getsize(out)
        pane.wait(lambda: os.path.getsize(out) > size + 16, "the reply to stream")
        pane.keys("C-c")
        pane.wait(lambda: pane.screen().count("[interrupted]") == n, "[interrupted] #%d" % n)
        pane.wait_prompt(n)
        stopped_at = os.path.getsize(out)
        time.sleep(0.3)
        check(os.path.getsize(out) == stopped_at, "reply %d stopped writing at Ctrl-C" % n)
        check(pane.echoes()[n - 1][0] == text, "message %d reached the model intact" % n)
    check(pane.screen().count("[interrupted]") == 2, "each Ctrl-C stopped one reply, the session went on")
    pane.keys("C-d")
    check(pane.exit_status() == 0, "Ctrl-D after interrupted replies ends the chat with status 0")
    with open(out, "rb") as f:
        check(f.read().count(b"\n") == 2, "each interrupted reply ends with a newline on stdout")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    infer, vocab = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if shutil.which("tmux") is None:
        sys.exit("tmux is missing: scripts/setup-debian.sh installs it")
    folder = tempfile.mkdtemp(prefix="kinfer_chat_terminal_")
    term = Terminal(folder)
    try:
        model = os.path.join(folder, "tiny.gguf")
        subprocess.run([infer, "synth", "-o", model, "--preset", "tiny", "--vocab", vocab, "--n-embd", "64",
                        "--n-layer", "2", "--n-ff", "128", "--type", "Q8_0", "--quiet"],
                       check=True, capture_output=True, timeout=120)
        editing_session(term, infer, model, folder)
        interrupt_session(term, infer, model, folder)
    except Exception as e:  # a timeout or a tmux failure: report it as a failure with the screen
        failures.append(str(e))
        print("FAIL " + str(e), flush=True)
    finally:
        term.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print("%d failed" % len(failures) if failures else "all passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
