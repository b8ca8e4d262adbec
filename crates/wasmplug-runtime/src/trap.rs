//! Names in trap backtraces: C++ symbols demangled so people read
//! `app::parse(char const*)` rather than `_ZN3app5parseEPKc`.

/// Demangles an Itanium C++ name; other names come back unchanged.
pub(crate) fn demangle(name: &str) -> String {
    if name.starts_with("_Z") {
        if let Ok(symbol) = cpp_demangle::Symbol::new(name) {
            if let Ok(text) = symbol.demangle(&cpp_demangle::DemangleOptions::default()) {
                return text;
            }
        }
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn demangles_cpp_and_keeps_c_names() {
        assert_eq!(super::demangle("_ZN3app5parseEPKc"), "app::parse(char const*)");
        assert_eq!(super::demangle("process"), "process");
    }
}
