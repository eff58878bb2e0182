//! Removes secrets from anything that is stored or printed: the command line (values of flags
//! that look like credentials, `Authorization` headers, URL passwords).

const SECRET_WORDS: [&str; 5] = ["key", "token", "secret", "password", "authorization"];

fn is_secret_flag(flag: &str) -> bool {
    let flag = flag.trim_start_matches('-').to_ascii_lowercase();
    // `--api-key-env` names a variable, which is not itself a secret.
    !flag.ends_with("-env") && SECRET_WORDS.iter().any(|w| flag.contains(w))
}

/// Strips `user:password@` from a URL-looking argument.
fn redact_url(arg: &str) -> String {
    if let Some(scheme_end) = arg.find("://") {
        let rest = &arg[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{}://***@{}", &arg[..scheme_end], &rest[at + 1..]);
        }
    }
    arg.to_string()
}

/// The command line as it may be stored: secret flag values and header values become `***`.
pub fn command_line<I: IntoIterator<Item = String>>(args: I) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push("***".into());
            hide_next = false;
            continue;
        }
        if arg.starts_with('-') {
            if let Some((flag, _)) = arg.split_once('=') {
                if is_secret_flag(flag) {
                    out.push(format!("{flag}=***"));
                    continue;
                }
            } else if is_secret_flag(&arg) {
                hide_next = true;
            }
            out.push(arg);
            continue;
        }
        if arg.to_ascii_lowercase().starts_with("authorization:") {
            out.push("Authorization: ***".into());
            continue;
        }
        out.push(redact_url(&arg));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        command_line(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn secret_flag_values_are_hidden() {
        assert_eq!(
            line(&[
                "ceiling",
                "probe",
                "--api-key",
                "sk-123",
                "--url",
                "http://h"
            ]),
            "ceiling probe --api-key *** --url http://h"
        );
        assert_eq!(line(&["x", "--token=abc"]), "x --token=***");
    }

    #[test]
    fn env_var_names_and_plain_flags_are_kept() {
        assert_eq!(
            line(&["ceiling", "--api-key-env", "MY_KEY", "--batch-sizes", "1,2"]),
            "ceiling --api-key-env MY_KEY --batch-sizes 1,2"
        );
    }

    #[test]
    fn url_passwords_and_auth_headers_are_hidden() {
        assert_eq!(
            line(&["--url", "https://u:pw@host:8000/v1"]),
            "--url https://***@host:8000/v1"
        );
        assert_eq!(line(&["Authorization: Bearer x"]), "Authorization: ***");
    }
}
