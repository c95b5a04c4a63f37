//! The offline runner (`orbitnet plan`): the model's state over a range of times, computed
//! on all cores and written as tables, JSON lines or CSV. No network, no clock: it owns only
//! the parallel iteration and the output formats; the physics is all in `orbitnet-model`.

pub mod output;
pub mod pipeline;
mod summary;

pub use pipeline::for_each_tick;
pub use summary::{Report, Summary};

/// Sets the number of worker threads; call once, before the first run.
pub fn set_threads(n: usize) -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new().num_threads(n).build_global()
}

/// The number of worker threads runs use.
pub fn threads() -> usize {
    rayon::current_num_threads()
}
