//! bakery-template's integration tests, one binary: loading templates end to end (`load`), the generated option reference (`options_reference`) and the
//! no-panic properties (`props`); fixtures are in `fixtures/`.

mod load;
mod options_reference;
mod props;
