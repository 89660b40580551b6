//! `rocker build`: Containerfiles read as docker reads them
//! (`containerfile`, `instruction`, `words`), split into stages
//! (`stages`), with the build cache (`cache`), `.dockerignore` (`ignore`,
//! `pattern`) and the layers COPY makes (`copy`). The steps themselves run
//! in `commands::build`, with run's and commit's own code.

pub mod archive;
pub mod cache;
pub mod containerfile;
pub mod copy;
pub mod ignore;
pub mod instruction;
pub mod metadata;
pub mod mounts;
pub mod pattern;
pub mod stages;
pub mod url;
pub mod words;
