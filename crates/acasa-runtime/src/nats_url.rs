//! NATS server URLs as `ACASA_NATS_URL` gives them: credentials inside a URL
//! are split out, because async-nats ignores them there.

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `user:password@` out of a NATS URL (or a comma-separated list of
/// them): the URLs without credentials, and the first credentials found
/// (percent-decoded). async-nats ignores credentials inside the URL, so the
/// connection passes them as options instead.
pub fn split_url_credentials(urls: &str) -> (String, Option<(String, String)>) {
    let mut credentials = None;
    let mut cleaned = Vec::new();
    for url in urls.split(',') {
        let url = url.trim();
        let (scheme, rest) = match url.find("://") {
            Some(i) => (&url[..i + 3], &url[i + 3..]),
            None => ("", url),
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                if credentials.is_none() {
                    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                    credentials = Some((percent_decode(user), percent_decode(password)));
                }
                cleaned.push(format!("{scheme}{}{tail}", &authority[at + 1..]));
            }
            None => cleaned.push(url.to_owned()),
        }
    }
    (cleaned.join(","), credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_split_out() {
        assert_eq!(split_url_credentials("nats://127.0.0.1:4222"), ("nats://127.0.0.1:4222".into(), None));
        assert_eq!(
            split_url_credentials("nats://acasa:s3cr%40t@127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".into(), Some(("acasa".into(), "s3cr@t".into())))
        );
        assert_eq!(
            split_url_credentials("nats://u:p@a:4222, nats://u:p@b:4222"),
            ("nats://a:4222,nats://b:4222".into(), Some(("u".into(), "p".into())))
        );
        assert_eq!(split_url_credentials("u@host:1/x"), ("host:1/x".into(), Some(("u".into(), String::new()))));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
