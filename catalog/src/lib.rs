//! Registers the lake's tables in AWS Glue for Athena. Built in the catalog issue (#4).
