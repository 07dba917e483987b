//! The gameday console (`firedrill run --gameday`): a web page on 127.0.0.1 with a token, where
//! people see the run live (timeline, open prompts with countdowns, what each sink received) and
//! answer at the run's [`Desk`](crate::engine::gameday::Desk). Presentation only: it sees the
//! journal through the desk and answers through it, nothing else.
//!
//! | file | what |
//! |---|---|
//! | `view.rs` | the console's state as a pure function of journal events, and its SSE frames |
//! | `page.rs` | the page (inline CSS and JS), the prompt cards |
//! | `server.rs` | hyper on `127.0.0.1:0`, the token, the routes |

mod page;
mod server;
mod view;

pub(super) use server::Console;
