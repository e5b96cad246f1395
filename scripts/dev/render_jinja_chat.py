#!/usr/bin/env python3
"""Dev-only: renders the chat test conversations with a GGUF's own Jinja chat template, the way Hugging Face
transformers' apply_chat_template does (Jinja2 sandbox, trim_blocks, lstrip_blocks, raise_exception).
Called by scripts/dev/gen_chat_fixtures.sh; needs the jinja2 package. Never run by the build or CI.

    render_jinja_chat.py TEMPLATE.jinja CONVERSATIONS.txt NAME BOS EOS  > expected.txt

Output lines as chat_template_ref.cpp writes them: NAME<TAB>conversation<TAB>gen<TAB>escaped text, or the text
"!ERROR " + message when the template raises (e.g. roles that do not alternate).
"""
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            c = s[i + 1]
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(c, c))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def escape(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def read_conversations(path):
    convs = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f.read().split("\n"):
            if not line or line.startswith("#"):
                continue
            if line.startswith("=== "):
                convs.append((line[4:], []))
                continue
            role, content = line.split(": ", 1)
            convs[-1][1].append({"role": role, "content": unescape(content)})
    return convs


def main():
    tmpl_path, conv_path, name, bos, eos = sys.argv[1:6]
    with open(tmpl_path, encoding="utf-8") as f:
        source = f.read()

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    for conv_name, messages in read_conversations(conv_path):
        for gen in (0, 1):
            try:
                text = template.render(messages=messages, bos_token=bos, eos_token=eos, add_generation_prompt=bool(gen))
            except TemplateError as e:
                text = "!ERROR " + str(e)
            sys.stdout.write(f"{name}\t{conv_name}\t{gen}\t{escape(text)}\n")


if __name__ == "__main__":
    main()
