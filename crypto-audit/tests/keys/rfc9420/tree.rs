//! tree-validation.
