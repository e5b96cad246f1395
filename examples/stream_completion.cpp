// Streams a completion from a GGUF model with the kinfer library.
//   stream_completion MODEL.gguf "PROMPT" [MAX_TOKENS]
#include <kinfer/kinfer.hpp>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.gguf PROMPT [MAX_TOKENS]\n";
        return 2;
    }
    try {
        const kinfer::Model model = kinfer::Model::load(argv[1], {.n_ctx = 2048});
        kinfer::Session session(model);

        kinfer::GenerateOptions options;
        options.max_tokens = argc > 3 ? std::atoi(argv[3]) : 128;
        options.sampling.temperature = 0.7f;
        options.sampling.seed = 42;  // the same seed gives the same text

        // Instruct models get the prompt wrapped in their chat template; base models get it as is.
        const std::vector<int32_t> prompt =
            model.has_chat_template() ? model.chat_prompt({{"user", argv[2]}}) : model.tokenize(argv[2]);

        const kinfer::GenerateResult result = session.generate(prompt, options, [](std::string_view text) {
            std::cout << text << std::flush;  // called as soon as each piece of text is final
            return true;                      // false would stop generation
        });
        std::cout << '\n';
        std::cerr << result.generated_tokens << " tokens, "
                  << result.generated_tokens / result.generate_seconds << " tokens/s ("
                  << kinfer::to_string(result.stop_reason) << ")\n";
    } catch (const kinfer::Error& e) {  // bad file, unsupported model, bad arguments
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
