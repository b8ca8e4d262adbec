//! The starting source `wasmplug new` writes: a numeric export, or a
//! bytes-ABI function, in C or C++ (the C++ ones use libc++, so they show
//! that path too).

use std::str::FromStr;

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// C: `<name>.c`.
    C,
    /// C++ with libc++: `<name>.cpp`.
    Cpp,
}

impl FromStr for Language {
    type Err = String;

    fn from_str(text: &str) -> Result<Language, String> {
        match text {
            "c" => Ok(Language::C),
            "cpp" | "c++" => Ok(Language::Cpp),
            other => Err(format!("`{other}` is neither c nor cpp")),
        }
    }
}

/// A new plugin's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `<name>.c` or `<name>.cpp`.
    pub file_name: String,
    /// Its text.
    pub source: String,
    /// The exported function.
    pub function: String,
    /// The command that calls it once it is built, for the next steps.
    pub try_it: String,
}

/// The source of a new plugin `name`: a numeric export `name(int) -> int`,
/// or with `bytes` a bytes-ABI function that greets its input. The function
/// is named after the plugin (`-` becomes `_`).
pub fn template(name: &str, language: Language, bytes: bool) -> Template {
    let function = name.replace('-', "_");
    let extension = match language {
        Language::C => "c",
        Language::Cpp => "cpp",
    };
    let file_name = format!("{name}.{extension}");
    let source = match (language, bytes) {
        (Language::C, false) => format!(
            r#"// {file_name}: a wasmplug plugin. Build it with `wasmplug build {file_name}`.
// `{function}(x)` answers x * 2 + 1, like the seed's `process`.
#include "wasmplug.h"

WASMPLUG_EXPORT({function}) int {function}(int x) {{
    return x * 2 + 1;
}}
"#
        ),
        (Language::C, true) => format!(
            r#"// {file_name}: a wasmplug plugin. Build it with `wasmplug build {file_name}`.
// `{function}` is a bytes-ABI function: it reads its input and answers
// "hello, <input>!". Returning non-zero would make the output an error.
#include "wasmplug.h"

static unsigned char input[64 * 1024];

WASMPLUG_EXPORT({function}) int {function}(void) {{
    if (wasmplug_input_len() > sizeof input) {{
        wasmplug_output_str("the input is larger than 64 KiB");
        return WASMPLUG_ERROR;
    }}
    size_t len = wasmplug_input_read(input, sizeof input);
    wasmplug_log_str(WASMPLUG_LOG_INFO, "greeting");
    wasmplug_output_str("hello, ");
    wasmplug_output_write(input, len);
    wasmplug_output_str("!");
    return WASMPLUG_OK;
}}
"#
        ),
        (Language::Cpp, false) => format!(
            r#"// {file_name}: a wasmplug plugin in C++ with libc++. Build it with
// `wasmplug build {file_name}`.
// `{function}(n)` answers 0 + 1 + ... + (n - 1), summed from a std::vector.
#include <numeric>
#include <vector>

#include "wasmplug.h"

WASMPLUG_EXPORT({function}) int {function}(int n) {{
    std::vector<int> values(n > 0 ? n : 0);
    std::iota(values.begin(), values.end(), 0);
    return std::accumulate(values.begin(), values.end(), 0);
}}
"#
        ),
        (Language::Cpp, true) => format!(
            r#"// {file_name}: a wasmplug plugin in C++ with libc++. Build it with
// `wasmplug build {file_name}`.
// `{function}` is a bytes-ABI function: it reads its input and answers
// "hello, <input>!". Returning non-zero would make the output an error.
#include <string>

#include "wasmplug.h"

WASMPLUG_EXPORT({function}) int {function}(void) {{
    std::string input(wasmplug_input_len(), '\0');
    input.resize(wasmplug_input_read(input.data(), input.size()));
    std::string answer = "hello, " + input + "!";
    wasmplug_output_write(answer.data(), answer.size());
    return WASMPLUG_OK;
}}
"#
        ),
    };
    let try_it = if bytes {
        format!("wasmplug run {name}.wasm {function} --input world")
    } else {
        format!("wasmplug run {name}.wasm {function} 21")
    };
    Template {
        file_name,
        source,
        function,
        try_it,
    }
}
