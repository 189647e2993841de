//! Names as others see them.

/// A name as someone other than its owner sees it: each word keeps its first third (at least
/// one letter) and shows at most three stars for the rest, so "Nguyễn Văn A" is "Ng*** V** A".
pub fn masked_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| {
            let letters: Vec<char> = word.chars().collect();
            let kept = letters.len().div_ceil(3).max(1);
            let hidden = (letters.len() - kept).min(3);
            let mut masked: String = letters[..kept].iter().collect();
            masked.extend(std::iter::repeat_n('*', hidden));
            masked
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_word_by_word() {
        assert_eq!(masked_name("Nguyễn Văn A"), "Ng*** V** A");
        assert_eq!(masked_name("Trần Thị Bích Ngọc"), "Tr** T** Bí** Ng**");
        assert_eq!(masked_name("  Lê   B  "), "L* B");
    }
}
