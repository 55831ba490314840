//! bakery-template's integration tests, one binary: loading templates end to end (`load`) and the
//! no-panic properties (`props`); fixtures are in `fixtures/`.

mod load;
mod props;
