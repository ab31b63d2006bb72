//! RESP on the client port: request parsing (with Redis's limits and error
//! texts) and reply encoding (RESP2, or RESP3 after `HELLO 3`).

pub mod reply;
pub mod request;

pub use reply::Reply;
pub use request::{ParseError, ParserLimits, RequestParser};
