//! Delta column types as Glue (Hive DDL) type names, which Athena reads.

use deltalake::kernel::{DataType, PrimitiveType};

/// The Glue type of a Delta type, or the Delta type's name when Glue has none.
pub fn glue_type(data_type: &DataType) -> Result<String, String> {
    Ok(match data_type {
        DataType::Primitive(p) => primitive(p)?.to_string(),
        DataType::Array(a) => format!("array<{}>", glue_type(a.element_type())?),
        DataType::Map(m) => format!(
            "map<{},{}>",
            glue_type(m.key_type())?,
            glue_type(m.value_type())?
        ),
        DataType::Struct(s) => {
            let fields = s
                .fields()
                .map(|f| Ok(format!("{}:{}", f.name(), glue_type(f.data_type())?)))
                .collect::<Result<Vec<_>, String>>()?;
            format!("struct<{}>", fields.join(","))
        }
        other => return Err(format!("{other}")),
    })
}

fn primitive(p: &PrimitiveType) -> Result<String, String> {
    Ok(match p {
        PrimitiveType::String => "string".into(),
        PrimitiveType::Long => "bigint".into(),
        PrimitiveType::Integer => "int".into(),
        PrimitiveType::Short => "smallint".into(),
        PrimitiveType::Byte => "tinyint".into(),
        PrimitiveType::Float => "float".into(),
        PrimitiveType::Double => "double".into(),
        PrimitiveType::Boolean => "boolean".into(),
        PrimitiveType::Binary => "binary".into(),
        PrimitiveType::Date => "date".into(),
        PrimitiveType::Timestamp => "timestamp".into(),
        PrimitiveType::Decimal(d) => format!("decimal({},{})", d.precision(), d.scale()),
        // timestamp_ntz needs writer version 7, which our tables never use; intervals and
        // the rest have no Hive type.
        other => return Err(format!("{other}")),
    })
}

#[cfg(test)]
mod tests {
    use deltalake::kernel::{ArrayType, MapType, StructField, StructType};

    use super::*;

    #[test]
    fn primitives_nested_and_unsupported() {
        assert_eq!(glue_type(&DataType::LONG).unwrap(), "bigint");
        assert_eq!(glue_type(&DataType::TIMESTAMP).unwrap(), "timestamp");
        assert_eq!(
            glue_type(&DataType::decimal(12, 2).unwrap()).unwrap(),
            "decimal(12,2)"
        );
        let nested = DataType::Struct(Box::new(
            StructType::try_new([
                StructField::new(
                    "tags",
                    DataType::Array(Box::new(ArrayType::new(DataType::STRING, true))),
                    true,
                ),
                StructField::new(
                    "counts",
                    DataType::Map(Box::new(MapType::new(
                        DataType::STRING,
                        DataType::INTEGER,
                        true,
                    ))),
                    true,
                ),
            ])
            .unwrap(),
        ));
        assert_eq!(
            glue_type(&nested).unwrap(),
            "struct<tags:array<string>,counts:map<string,int>>"
        );
        assert!(glue_type(&DataType::TIMESTAMP_NTZ).is_err());
    }
}
