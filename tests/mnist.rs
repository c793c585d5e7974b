//! MNIST readers (placeholder until written).
