// wasmplug-build: -mexec-model=reactor -O2 -fno-exceptions -fno-rtti -Wl,--strip-debug
// A libc++ reactor: proves std::vector, std::sort, std::string, std::map,
// std::to_chars and stdio work inside a plugin.
//
//   stats      bytes ABI: `[3, 1.5, 4]` -> {"count":3,"sum":8.5,"min":1.5,
//              "max":4,"mean":2.8333333333333335,"sorted":[1.5,3,4]}
//   words      bytes ABI: words (runs of non-whitespace, case kept) counted in
//              a std::map -> {"word":count,...} sorted by key; prints one line
//              to stdout and one to stderr
//   vector_sum (i32 n) -> i32: 0 + 1 + ... + (n - 1) through a std::vector
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "wasmplug.h"

namespace {

std::string read_input() {
    std::string input(wasmplug_input_len(), '\0');
    input.resize(wasmplug_input_read(input.data(), input.size()));
    return input;
}

int fail(const std::string& message) {
    wasmplug_output_write(message.data(), message.size());
    return WASMPLUG_ERROR;
}

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A JSON array of numbers, strictly by the JSON grammar (no NaN, no
// Infinity, no leading '+', no trailing comma). strtod does the conversion so
// the rounding is correct; the grammar check happens first because strtod
// accepts more than JSON does.
class NumberArrayParser {
   public:
    explicit NumberArrayParser(std::string_view text) : text_(text) {}

    // Returns an empty string on success, else what went wrong.
    std::string parse(std::vector<double>& numbers) {
        skip_space();
        if (!eat('[')) return error("expected '['");
        skip_space();
        if (eat(']')) return finish();
        for (;;) {
            skip_space();
            double value = 0;
            std::string problem = number(value);
            if (!problem.empty()) return problem;
            numbers.push_back(value);
            skip_space();
            if (eat(']')) return finish();
            if (!eat(',')) return error("expected ',' or ']'");
        }
    }

   private:
    std::string finish() {
        skip_space();
        if (pos_ != text_.size()) return error("unexpected trailing characters");
        return {};
    }

    std::string number(double& value) {
        size_t start = pos_;
        eat('-');
        if (eat('0')) {
        } else if (pos_ < text_.size() && is_digit(text_[pos_])) {
            while (pos_ < text_.size() && is_digit(text_[pos_])) pos_++;
        } else {
            return error("expected a number");
        }
        if (eat('.')) {
            if (!digits()) return error("expected a digit after '.'");
        }
        if (eat('e') || eat('E')) {
            if (!eat('+')) eat('-');
            if (!digits()) return error("expected a digit in the exponent");
        }
        std::string literal(text_.substr(start, pos_ - start));
        value = std::strtod(literal.c_str(), nullptr);
        if (!std::isfinite(value)) {
            pos_ = start;
            return error("number out of range");
        }
        return {};
    }

    bool digits() {
        size_t start = pos_;
        while (pos_ < text_.size() && is_digit(text_[pos_])) pos_++;
        return pos_ > start;
    }

    bool eat(char c) {
        if (pos_ < text_.size() && text_[pos_] == c) {
            pos_++;
            return true;
        }
        return false;
    }

    void skip_space() {
        while (pos_ < text_.size() && is_json_space(text_[pos_])) pos_++;
    }

    std::string error(const char* what) const {
        return std::string("invalid input at byte ") + std::to_string(pos_) + ": " + what +
               " (want a JSON array of numbers, like [3, 1.5, 4])";
    }

    std::string_view text_;
    size_t pos_ = 0;
};

// Shortest text that reads back as the same double, as JavaScript and
// serde_json print it: 4 not 4.0, 2.8333333333333335.
void append_number(std::string& out, double value) {
    char buffer[64];
    auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
}

void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += "\\u00";
                    out += hex[(c >> 4) & 0xf];
                    out += hex[c & 0xf];
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

}  // namespace

WASMPLUG_EXPORT(stats) int stats(void) {
    std::string input = read_input();
    std::vector<double> numbers;
    std::string problem = NumberArrayParser(input).parse(numbers);
    if (!problem.empty()) return fail(problem);

    std::sort(numbers.begin(), numbers.end());
    double sum = 0;
    for (double n : numbers) sum += n;
    if (!std::isfinite(sum)) return fail("the sum overflows a double");

    std::string out = "{\"count\":" + std::to_string(numbers.size()) + ",\"sum\":";
    append_number(out, sum);
    if (numbers.empty()) {
        out += ",\"min\":null,\"max\":null,\"mean\":null";
    } else {
        out += ",\"min\":";
        append_number(out, numbers.front());
        out += ",\"max\":";
        append_number(out, numbers.back());
        out += ",\"mean\":";
        append_number(out, sum / static_cast<double>(numbers.size()));
    }
    out += ",\"sorted\":[";
    for (size_t i = 0; i < numbers.size(); i++) {
        if (i > 0) out += ',';
        append_number(out, numbers[i]);
    }
    out += "]}";
    wasmplug_output_write(out.data(), out.size());
    return WASMPLUG_OK;
}

WASMPLUG_EXPORT(words) int words(void) {
    std::string input = read_input();
    std::map<std::string, int> counts;
    int total = 0;
    size_t i = 0;
    while (i < input.size()) {
        while (i < input.size() && (is_json_space(input[i]) || input[i] == '\f' || input[i] == '\v')) i++;
        size_t start = i;
        while (i < input.size() && !(is_json_space(input[i]) || input[i] == '\f' || input[i] == '\v')) i++;
        if (i > start) {
            counts[input.substr(start, i - start)]++;
            total++;
        }
    }

    std::string out = "{";
    for (const auto& [word, count] : counts) {
        if (out.size() > 1) out += ',';
        append_json_string(out, word);
        out += ':';
        out += std::to_string(count);
    }
    out += '}';

    // Reactors never exit, so nothing flushes stdout for us.
    std::printf("words: %d words, %zu distinct\n", total, counts.size());
    std::fflush(stdout);
    std::fprintf(stderr, "words: wrote %zu bytes of JSON\n", out.size());

    wasmplug_output_write(out.data(), out.size());
    return WASMPLUG_OK;
}

WASMPLUG_EXPORT(vector_sum) int32_t vector_sum(int32_t n) {
    std::vector<uint32_t> values;
    for (int32_t i = 0; i < n; i++) values.push_back(static_cast<uint32_t>(i));
    uint32_t sum = 0;  // wraps like i32.add instead of overflowing
    for (uint32_t v : values) sum += v;
    return static_cast<int32_t>(sum);
}
