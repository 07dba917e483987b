
mod stack;
