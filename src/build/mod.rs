//! `rocker build`: Containerfiles read as docker reads them
//! (`containerfile`, `instruction`, `words`).

pub mod containerfile;
pub mod instruction;
pub mod words;
