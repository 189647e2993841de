//! The languages a client can read us in, chosen from `Accept-Language`.

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// The supported language the caller prefers most, by `Accept-Language` q-values;
    /// Vietnamese when the header is absent or names nothing we speak.
    pub fn negotiate(headers: &HeaderMap) -> Lang {
        let Some(header) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::default();
        };
        let mut best: Option<(Lang, f32)> = None;
        for item in header.split(',') {
            let mut parts = item.trim().split(';');
            let range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = range.split('-').next().unwrap_or("");
            let lang = match primary {
                "vi" => Lang::Vi,
                "en" => Lang::En,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
                best = Some((lang, quality));
            }
        }
        best.map(|(lang, _)| lang).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn negotiate(value: &str) -> Lang {
        let mut headers = HeaderMap::new();
        headers.insert("accept-language", HeaderValue::from_str(value).unwrap());
        Lang::negotiate(&headers)
    }

    #[test]
    fn vietnamese_is_the_default() {
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::Vi);
        assert_eq!(negotiate("fr-FR, de;q=0.5"), Lang::Vi);
    }

    #[test]
    fn the_preferred_supported_language_wins() {
        assert_eq!(negotiate("en-US,en;q=0.9"), Lang::En);
        assert_eq!(negotiate("fr, en;q=0.8, vi;q=0.9"), Lang::Vi);
        assert_eq!(negotiate("vi;q=0.2, EN;q=0.7"), Lang::En);
        assert_eq!(negotiate("en;q=0, vi;q=0.1"), Lang::Vi);
    }
}
