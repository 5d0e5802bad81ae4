//! Why publishing to a target failed.

/// Publishing to one target failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistributeError {
    /// The target refuses the image or its settings (e.g. a gallery definition of another
    /// generation, an explicit version that already exists).
    #[error("{run_output_name}: {message}")]
    Rejected {
        /// The target.
        run_output_name: String,
        /// Why.
        message: String,
    },
    /// No distributor can serve this kind of target here.
    #[error("{run_output_name}: {message}")]
    Unsupported {
        /// The target.
        run_output_name: String,
        /// What is missing.
        message: String,
    },
    /// Writing to the target failed.
    #[error("{run_output_name}: failed to {operation}")]
    Failed {
        /// The target.
        run_output_name: String,
        /// What was being done.
        operation: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}
