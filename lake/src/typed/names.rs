//! SQL-safe names for columns and tables: what Athena, Glue and Delta without column
//! mapping all accept, for names that come from events.

use std::collections::BTreeSet;

/// Lower-case letters, digits and underscores (`f_` before a leading digit); Athena folds
/// names to lower case anyway.
pub fn sql_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "f_");
    }
    name
}

/// `wanted`, or `wanted_2`, `wanted_3`, … when taken; the result is taken from then on.
pub fn unique(taken: &mut BTreeSet<String>, wanted: String) -> String {
    let mut name = wanted.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{wanted}_{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sql_safe_and_unique() {
        assert_eq!(sql_name("Payment-Item"), "payment_item");
        assert_eq!(sql_name("1st"), "f_1st");
        assert_eq!(sql_name(""), "f_");
        assert_eq!(sql_name("größe"), "gr__e");
        let mut taken = BTreeSet::from(["a".to_string()]);
        assert_eq!(unique(&mut taken, "a".into()), "a_2");
        assert_eq!(unique(&mut taken, "a".into()), "a_3");
        assert_eq!(unique(&mut taken, "b".into()), "b");
    }
}
