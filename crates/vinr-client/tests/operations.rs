//! Every operation of the committed `openapi.json` has a method on `Client`, named after its
//! `operationId` in snake_case: a route added to the server (and so to the document, which CI
//! keeps in step with the code) fails this test until the client has it too.

use std::path::Path;

fn snake_case(operation_id: &str) -> String {
    let mut name = String::new();
    for character in operation_id.chars() {
        if character.is_ascii_uppercase() {
            name.push('_');
            name.push(character.to_ascii_lowercase());
        } else {
            name.push(character);
        }
    }
    name
}

#[test]
fn every_operation_of_the_document_has_a_client_method() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let document = std::fs::read_to_string(root.join("../../openapi.json")).expect("openapi.json");
    let document: serde_json::Value = serde_json::from_str(&document).expect("JSON");
    let source = std::fs::read_to_string(root.join("src/api.rs")).expect("src/api.rs");
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = 0;
    let mut missing = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let Some(operation_id) = operation.get("operationId").and_then(|id| id.as_str()) else {
                continue;
            };
            operations += 1;
            let name = snake_case(operation_id);
            if !source.contains(&format!("pub fn {name}(")) {
                missing.push(format!(
                    "{} {path} ({operation_id} → Client::{name})",
                    method.to_uppercase()
                ));
            }
        }
    }
    assert!(
        operations >= 40,
        "only {operations} operations in openapi.json"
    );
    assert!(
        missing.is_empty(),
        "operations without a client method: {missing:#?}"
    );
}

#[test]
fn snake_case_names() {
    assert_eq!(snake_case("createPayment"), "create_payment");
    assert_eq!(snake_case("getOwnAccount"), "get_own_account");
    assert_eq!(snake_case("healthz"), "healthz");
}
