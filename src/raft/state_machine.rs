//! Batched-apply state machine. (being written)
pub struct StateMachine;
