
mod stack;
mod validate;
