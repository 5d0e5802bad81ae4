//! Hostile deployment templates: `evaluate_deployment` must never panic,
//! overflow the stack, exhaust memory or take long, and must report why it
//! refused. The inputs are scaled-down versions of a review's reproducers
//! (substring overflow, format and utcNow widths, long accessor chains,
//! chains of variables and parameters, "billion laughs" through variables,
//! quadratic union and error de-duplication), plus Key Vault references,
//! secure values in messages, and a fuzzer.

use std::time::{Duration, Instant};

use imagebuilder_core::template::arm::{
    evaluate_deployment, ArmEnvironment, ArmError, EvaluatedResource, SuppliedParameters,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A deployment with one image template whose first inline command is
/// `inline`.
fn deployment(parameters: Value, variables: Value, inline: &str) -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
        "variables": variables,
        "resources": [{
            "type": "Microsoft.VirtualMachineImages/imageTemplates",
            "apiVersion": "2024-02-01",
            "name": "t",
            "location": "westus",
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "latest"},
                "customize": [{"type": "Shell", "inline": [inline]}],
                "distribute": [{"type": "VHD", "runOutputName": "v"}]
            }
        }]
    })
}

fn run(
    doc: &Value,
    supplied: &SuppliedParameters,
) -> Result<Vec<EvaluatedResource>, Vec<ArmError>> {
    evaluate_deployment(doc, supplied, &ArmEnvironment::default())
}

/// The evaluated first inline command.
fn inline_of(doc: &Value) -> Value {
    match run(doc, &SuppliedParameters::default()) {
        Ok(r) => r[0].resource["properties"]["customize"][0]["inline"][0].clone(),
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

/// Every error as `path: message`.
fn errors_of(doc: &Value, supplied: &SuppliedParameters) -> Vec<String> {
    run(doc, supplied)
        .expect_err("expected errors")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn expr(inline: &str) -> Value {
    deployment(json!({}), json!({}), inline)
}

/// Asserts some error contains `needle`, showing them all otherwise.
fn assert_reported(errors: &[String], needle: &str) {
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "no error contains {needle:?}: {errors:#?}"
    );
}

/// Runs `f` on a thread with a 2 MiB stack, as tokio's worker threads
/// have (the main thread has 8 MiB), so a test passing here cannot
/// overflow either.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

const TOO_DEEP: &str = "nested too deeply; at most 200 levels";
const INLINE: &str = "resources[0].properties.customize[0].inline[0]";

/// `v0 = "x"`, `v{i} = make(i - 1)`.
fn variable_chain(n: usize, make: impl Fn(usize) -> Value) -> Value {
    let mut vars = Map::new();
    vars.insert("v0".into(), json!("x"));
    for i in 1..n {
        vars.insert(format!("v{i}"), make(i - 1));
    }
    Value::Object(vars)
}

// ---- 1. panics -------------------------------------------------------------

#[test]
fn substring_past_the_end_by_i64_max_is_an_error() {
    let errors = errors_of(
        &expr("[substring('abc', 1, 9223372036854775807)]"),
        &SuppliedParameters::default(),
    );
    assert_eq!(
        errors,
        vec![format!(
            "{INLINE}: function 'substring' length 9223372036854775807 from index 1 goes past the end of a string of length 3 (at position 2)"
        )]
    );
}

#[test]
fn format_with_70000_zeros_pads_instead_of_panicking() {
    let zeros = "0".repeat(70_000);
    let out = inline_of(&expr(&format!("[format('{{0:{zeros}}}', 1)]")));
    assert_eq!(out.as_str().unwrap().len(), 70_000);
}

#[test]
fn utc_now_with_70000_ys_pads_instead_of_panicking() {
    let ys = "y".repeat(70_000);
    let doc = deployment(
        json!({"p": {"type": "string", "defaultValue": format!("[utcNow('{ys}')]")}}),
        json!({}),
        "[parameters('p')]",
    );
    assert_eq!(inline_of(&doc).as_str().unwrap().len(), 70_000);
}

#[test]
fn integer_overflow_anywhere_is_an_error_naming_the_function() {
    let cases = [
        ("[add(9223372036854775807, 1)]", "function 'add' overflowed"),
        (
            "[sub(-9223372036854775808, 1)]",
            "function 'sub' overflowed",
        ),
        ("[mul(9223372036854775807, 2)]", "function 'mul' overflowed"),
        ("[div(-9223372036854775808, -1)]", "function 'div'"),
        ("[mod(-9223372036854775808, -1)]", "function 'mod'"),
        (
            "[int('9223372036854775808')]",
            "function 'int' cannot convert",
        ),
        (
            "[range(9223372036854775807, 2)]",
            "function 'range' overflowed",
        ),
        ("[range(0, 9223372036854775807)]", "function 'range' count"),
        (
            "[padLeft('a', 9223372036854775807)]",
            "function 'padLeft' totalLength",
        ),
        (
            "[padLeft('a', -9223372036854775808)]",
            "function 'padLeft' totalLength",
        ),
        (
            "[substring('abc', 9223372036854775807, 1)]",
            "function 'substring' start index",
        ),
        (
            "[format('{0,9223372036854775807}', 1)]",
            "function 'format'",
        ),
        (
            "[format('{0,-9223372036854775808}', 1)]",
            "function 'format'",
        ),
        ("[format('{99999999999999999999}', 1)]", "function 'format'"),
    ];
    for (text, needle) in cases {
        let errors = errors_of(&expr(text), &SuppliedParameters::default());
        assert_reported(&errors, needle);
    }
    // Counts past the end are clamped, as in ARM.
    assert_eq!(
        inline_of(&expr("[string(skip(createArray(1), 9223372036854775807))]")),
        json!("[]")
    );
    assert_eq!(
        inline_of(&expr("[take('abc', -9223372036854775808)]")),
        json!("")
    );
    let copy = deployment(
        json!({}),
        json!({"copy": [{"name": "c", "count": 9223372036854775807i64, "input": 1}]}),
        "[string(variables('c'))]",
    );
    assert_reported(
        &errors_of(&copy, &SuppliedParameters::default()),
        "copy count must be an int from 0 to 800",
    );
}

// ---- 2. stack overflow ---------------------------------------------------------

#[test]
fn long_property_and_index_chains_are_too_deep() {
    on_small_stack(|| {
        let props = format!("[resourceGroup(){}]", ".a".repeat(200_000));
        assert_eq!(
            errors_of(&expr(&props), &SuppliedParameters::default()),
            vec![format!("{INLINE}: {TOO_DEEP} of expressions, template values, parameters and variables can be nested")]
        );
        let index = format!("[createArray(1){}]", "[0]".repeat(200_000));
        assert_reported(
            &errors_of(&expr(&index), &SuppliedParameters::default()),
            TOO_DEEP,
        );
        let calls = format!("[{}1{}]", "createArray(".repeat(5_000), ")".repeat(5_000));
        assert_reported(
            &errors_of(&expr(&calls), &SuppliedParameters::default()),
            TOO_DEEP,
        );
        // Just inside the limit: six levels of template value around 193
        // nested calls and the innermost literal.
        let calls = format!("[{}'a'{}]", "concat(".repeat(193), ")".repeat(193));
        assert_eq!(inline_of(&expr(&calls)), json!("a"));
        let calls = format!("[{}'a'{}]", "concat(".repeat(194), ")".repeat(194));
        assert_reported(
            &errors_of(&expr(&calls), &SuppliedParameters::default()),
            TOO_DEEP,
        );
    });
}

#[test]
fn long_chains_of_variables_are_too_deep() {
    on_small_stack(|| {
        let vars = variable_chain(5_000, |prev| json!(format!("[variables('v{prev}')]")));
        let doc = deployment(json!({}), vars, "[variables('v4999')]");
        let errors = errors_of(&doc, &SuppliedParameters::default());
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("variables.v"), "{errors:#?}");
        assert_reported(&errors, TOO_DEEP);

        // A short chain is fine.
        let vars = variable_chain(20, |prev| json!(format!("[variables('v{prev}')]")));
        assert_eq!(
            inline_of(&deployment(json!({}), vars, "[variables('v19')]")),
            json!("x")
        );
    });
}

#[test]
fn long_chains_of_parameter_defaults_are_too_deep() {
    on_small_stack(|| {
        // Declared last-first, so resolving them in order walks the whole chain.
        let mut params = Map::new();
        for i in (1..20_000).rev() {
            params.insert(
                format!("p{i}"),
                json!({"type": "string", "defaultValue": format!("[parameters('p{}')]", i - 1)}),
            );
        }
        params.insert("p0".into(), json!({"type": "string", "defaultValue": "x"}));
        let doc = deployment(Value::Object(params), json!({}), "[parameters('p19999')]");
        assert_reported(&errors_of(&doc, &SuppliedParameters::default()), TOO_DEEP);
    });
}

#[test]
fn variables_each_nesting_calls_60_deep_are_too_deep_together() {
    on_small_stack(|| {
        let vars = variable_chain(200, |prev| {
            json!(format!(
                "[createArray({}variables('v{prev}'){})]",
                "createArray(".repeat(60),
                ")".repeat(60)
            ))
        });
        let doc = deployment(json!({}), vars, "[string(length(variables('v199')))]");
        assert_reported(&errors_of(&doc, &SuppliedParameters::default()), TOO_DEEP);
    });
}

#[test]
fn deeply_nested_template_values_are_too_deep() {
    on_small_stack(|| {
        let mut v = json!("[concat('a')]");
        for _ in 0..1_000 {
            v = json!([v]);
        }
        let doc = deployment(json!({}), json!({"deep": v}), "[string(variables('deep'))]");
        assert_reported(&errors_of(&doc, &SuppliedParameters::default()), TOO_DEEP);
    });
}

#[test]
fn values_nested_deeper_than_json_allows_are_refused() {
    on_small_stack(|| {
        // Each variable wraps the previous one in an array, read in order so
        // no resolution nests: the value itself gets deeper and deeper.
        let vars = variable_chain(300, |prev| {
            json!(format!("[createArray(variables('v{prev}'))]"))
        });
        let reads: Vec<String> = (0..300)
            .map(|i| format!("[length(variables('v{i}'))]"))
            .collect();
        let mut doc = deployment(json!({}), vars, "x");
        doc["resources"][0]["properties"]["customize"][0]["inline"] = json!(reads);
        assert_reported(
            &errors_of(&doc, &SuppliedParameters::default()),
            "function 'createArray' produced a value with arrays or objects nested more than 128 levels deep",
        );
    });
}

#[test]
fn the_deepest_allowed_evaluation_fits_a_small_stack() {
    on_small_stack(|| {
        // As deep as allowed, ending in work that recurses over a value as
        // deep as allowed: printing a 127-deep array at the bottom of a
        // chain of variables.
        let deep = format!("{}1{}", "[".repeat(127), "]".repeat(127));
        let vars = variable_chain(70, |prev| {
            json!(format!(
                "[concat(string(length(variables('v{prev}'))), string(json('{deep}')))]"
            ))
        });
        let doc = deployment(json!({}), vars, "[variables('v69')]");
        let result = run(&doc, &SuppliedParameters::default());
        let Err(errors) = result else {
            panic!("expected the chain to be too deep")
        };
        assert!(errors[0].message.contains(TOO_DEEP), "{errors:#?}");
        // And the longest chain that fits evaluates.
        let vars = variable_chain(30, |prev| {
            json!(format!(
                "[concat(string(length(variables('v{prev}'))), string(json('{deep}')))]"
            ))
        });
        let doc = deployment(json!({}), vars, "[variables('v29')]");
        assert!(run(&doc, &SuppliedParameters::default()).is_ok());
    });
}

// ---- 3. memory -----------------------------------------------------------------

#[test]
fn doubling_strings_through_variables_stops_at_the_string_limit() {
    let vars = {
        let mut v = Map::new();
        v.insert("s0".into(), json!("[padLeft('', 1048576, 'a')]"));
        for i in 1..40 {
            v.insert(
                format!("s{i}"),
                json!(format!(
                    "[concat(variables('s{}'), variables('s{}'))]",
                    i - 1,
                    i - 1
                )),
            );
        }
        Value::Object(v)
    };
    let start = Instant::now();
    let errors = errors_of(
        &deployment(json!({}), vars, "[variables('s39')]"),
        &SuppliedParameters::default(),
    );
    assert_reported(
        &errors,
        "variables.s1: function 'concat' would produce a string of 2097152 bytes; at most 1048576 bytes are allowed",
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn doubling_arrays_through_variables_stops_at_the_item_limit() {
    let vars = {
        let mut v = Map::new();
        v.insert("a0".into(), json!("[range(0, 10000)]"));
        for i in 1..40 {
            v.insert(
                format!("a{i}"),
                json!(format!(
                    "[concat(variables('a{}'), variables('a{}'))]",
                    i - 1,
                    i - 1
                )),
            );
        }
        Value::Object(v)
    };
    let errors = errors_of(
        &deployment(json!({}), vars, "[string(length(variables('a39')))]"),
        &SuppliedParameters::default(),
    );
    assert_reported(
        &errors,
        "function 'concat' would produce 160000 items; at most 100000 are allowed",
    );
}

#[test]
fn replace_padleft_and_range_refuse_huge_results() {
    let errors = errors_of(
        &expr("[replace(padLeft('', 1048576, 'a'), 'a', padLeft('', 1048576, 'b'))]"),
        &SuppliedParameters::default(),
    );
    assert_reported(
        &errors,
        "function 'replace' would produce a string of 1099511627776 bytes",
    );
    assert_reported(
        &errors_of(
            &expr("[padLeft('', 1000000000)]"),
            &SuppliedParameters::default(),
        ),
        "function 'padLeft' totalLength 1000000000 is out of range 0..=1048576",
    );
    assert_reported(
        &errors_of(
            &expr("[range(0, 100000000)]"),
            &SuppliedParameters::default(),
        ),
        "function 'range' count 100000000 is out of range 0..=10000",
    );
}

#[test]
fn total_work_is_bounded() {
    // 40 copies of a 1 MiB variable each fit the per-value limit; together
    // they pass the 64 MiB budget, and evaluation stops with one error.
    let reads: Vec<String> = (0..100).map(|_| "[variables('big')]".to_string()).collect();
    let mut doc = deployment(
        json!({}),
        json!({"big": "[padLeft('', 1048576, 'a')]"}),
        "x",
    );
    doc["resources"][0]["properties"]["customize"][0]["inline"] = json!(reads);
    let start = Instant::now();
    let errors = errors_of(&doc, &SuppliedParameters::default());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_reported(
        &errors,
        "function 'variables' exceeded the evaluation budget: a deployment's expressions may produce at most 64 MiB of values in total",
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    // A copy loop copies its input each time.
    let doc = deployment(
        json!({}),
        json!({"copy": [{"name": "c", "count": 800, "input": "[range(0, 10000)]"}]}),
        "[string(length(variables('c')))]",
    );
    assert_reported(
        &errors_of(&doc, &SuppliedParameters::default()),
        "exceeded the evaluation budget",
    );
}

// ---- 4. quadratic time ------------------------------------------------------

#[test]
fn union_of_large_arrays_is_fast() {
    let doc = expr("[string(length(union(range(0,10000),range(10000,10000),range(20000,10000),range(30000,10000),range(40000,10000))))]");
    let start = Instant::now();
    assert_eq!(inline_of(&doc), json!("50000"));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn many_errors_are_deduplicated_fast() {
    let nopes: Vec<&str> = vec!["[nope()]"; 50_000];
    let mut doc = expr("x");
    doc["resources"][0]["properties"]["customize"][0]["inline"] = json!(nopes);
    let start = Instant::now();
    let errors = run(&doc, &SuppliedParameters::default()).unwrap_err();
    assert_eq!(errors.len(), 50_000);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn many_variables_and_parameters_are_looked_up_fast() {
    // 20 000 variables read in order, and 20 000 parameters supplied.
    let vars = variable_chain(20_000, |prev| json!(format!("[variables('v{prev}')]")));
    let reads: Vec<String> = (0..20_000)
        .map(|i| format!("[variables('v{i}')]"))
        .collect();
    let mut params = Map::new();
    let mut supplied = SuppliedParameters::default();
    for i in 0..20_000 {
        params.insert(format!("p{i}"), json!({"type": "int"}));
        supplied.insert_json(&format!("p{i}"), json!(i));
    }
    let mut doc = deployment(Value::Object(params), vars, "x");
    doc["resources"][0]["properties"]["customize"][0]["inline"] = json!(reads);
    let start = Instant::now();
    let out = run(&doc, &supplied).unwrap();
    assert_eq!(
        out[0].resource["properties"]["customize"][0]["inline"][19_999],
        "x"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

// ---- 5. Key Vault references --------------------------------------------------

fn secret_deployment() -> Value {
    deployment(
        json!({"secret": {"type": "securestring"}}),
        json!({}),
        "[concat('echo ', parameters('secret'))]",
    )
}

fn key_vault_file() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"secret": {"reference": {"keyVault": {"id": "/x"}, "secretName": "s"}}}
    })
}

#[test]
fn a_key_vault_reference_can_be_given_a_value_later() {
    let mut supplied = SuppliedParameters::from_parameters_file(&key_vault_file()).unwrap();
    supplied.insert_text("secret", "hunter2");
    assert_eq!(
        inline_of_with(&secret_deployment(), &supplied),
        json!("echo hunter2")
    );

    let mut supplied = SuppliedParameters::from_parameters_file(&key_vault_file()).unwrap();
    supplied.insert_json("secret", json!("from-json"));
    assert_eq!(
        inline_of_with(&secret_deployment(), &supplied),
        json!("echo from-json")
    );
}

#[test]
fn an_unresolved_key_vault_reference_is_reported_at_the_parameter() {
    let supplied = SuppliedParameters::from_parameters_file(&key_vault_file()).unwrap();
    assert_eq!(
        errors_of(&secret_deployment(), &supplied),
        vec![
            "parameters.secret: parameter 'secret' is a Key Vault reference in the parameters file; Key Vault references cannot be resolved locally, so pass the value with --parameter secret=VALUE"
        ]
    );
}

fn inline_of_with(doc: &Value, supplied: &SuppliedParameters) -> Value {
    match run(doc, supplied) {
        Ok(r) => r[0].resource["properties"]["customize"][0]["inline"][0].clone(),
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

// ---- 6. secure values ---------------------------------------------------------

#[test]
fn secure_values_never_appear_in_errors() {
    let doc = deployment(
        json!({
            "pw": {"type": "securestring", "allowedValues": ["a", "b"]},
            "obj": {"type": "secureObject"},
            "other": {"type": "securestring"},
            "num": {"type": "securestring", "defaultValue": "[string(int(parameters('other')))]"}
        }),
        json!({}),
        "[createArray(1)[parameters('other')]]",
    );
    let mut supplied = SuppliedParameters::default();
    supplied.insert_text("pw", "hunter2");
    supplied.insert_json("obj", json!("hunter3"));
    supplied.insert_text("other", "swordfish");
    let errors = errors_of(&doc, &supplied);
    for e in &errors {
        for secret in ["hunter2", "hunter3", "swordfish"] {
            assert!(!e.contains(secret), "{secret} leaked: {errors:#?}");
        }
    }
    assert_reported(
        &errors,
        "parameters.pw: value <secure value> for parameter 'pw' is not one of the allowed values: 'a', 'b'",
    );
    assert_reported(
        &errors,
        "parameters.obj: parameter 'obj' is declared as secureObject but was given a string value <secure value>",
    );
    assert_reported(
        &errors,
        "function 'int' cannot convert '<secure value>' to an int",
    );
    assert_reported(
        &errors,
        "cannot index a value of type array with string '<secure value>'",
    );

    // A secureObject given a JSON object.
    let doc = deployment(
        json!({"o": {"type": "securestring"}}),
        json!({}),
        "[parameters('o')]",
    );
    let mut supplied = SuppliedParameters::default();
    supplied.insert_json("o", json!({"pw": "hunter2"}));
    assert_eq!(
        errors_of(&doc, &supplied),
        vec!["parameters.o: parameter 'o' is declared as securestring but was given an object value <secure value>"]
    );
}

// ---- 7. fuzzing -----------------------------------------------------------------

const FUNCTIONS: &[&str] = &[
    "parameters",
    "variables",
    "if",
    "concat",
    "toLower",
    "toUpper",
    "replace",
    "split",
    "substring",
    "trim",
    "startsWith",
    "endsWith",
    "padLeft",
    "base64",
    "base64ToString",
    "format",
    "string",
    "int",
    "bool",
    "json",
    "length",
    "empty",
    "contains",
    "first",
    "last",
    "union",
    "createArray",
    "createObject",
    "coalesce",
    "skip",
    "take",
    "range",
    "array",
    "equals",
    "not",
    "and",
    "or",
    "true",
    "false",
    "null",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "min",
    "max",
    "resourceGroup",
    "subscription",
    "resourceId",
    "subscriptionResourceId",
    "deployment",
    "environment",
    "copyIndex",
    "guid",
    "uniqueString",
    "utcNow",
    "reference",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "7",
    "1048576",
    "1048577",
    "10000",
    "65536",
    "9223372036854775807",
    "-9223372036854775808",
    "''",
    "'a'",
    "'{0}'",
    "'{0:00000}'",
    "'{0,-5}'",
    "'{1}'",
    "'{'",
    "'}'",
    "'yyyy'",
    "'[1,2]'",
    "'{\"a\":1}'",
    "'x/y'",
    "'Microsoft.X/y'",
    "','",
    "'s'",
    "'big'",
    "'deep'",
    "'c'",
    "'pw'",
    "'s'",
    "'=='",
    "'é'",
    "true",
    "false",
];

/// Builds a random expression from function names and literal tokens,
/// with accessors, nesting up to `depth`.
fn expression(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        proptest::sample::select(LITERALS).prop_map(str::to_string),
        proptest::sample::select(FUNCTIONS).prop_map(|f| format!("{f}()")),
    ];
    leaf.prop_recursive(depth, 64, 4, |inner| {
        prop_oneof![
            (
                proptest::sample::select(FUNCTIONS),
                proptest::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (
                inner.clone(),
                proptest::sample::select(&["a", "name", "x", "length"][..])
            )
                .prop_map(|(e, p)| format!("{e}.{p}")),
            (inner.clone(), inner).prop_map(|(e, i)| format!("{e}[{i}]")),
        ]
    })
    .boxed()
}

fn fuzz_deployment(inline: &str) -> Value {
    deployment(
        json!({
            "s": {"type": "string", "defaultValue": "[utcNow('yyyy')]"},
            "pw": {"type": "securestring", "defaultValue": "hunter2"}
        }),
        json!({
            "big": "[padLeft('', 1048576, 'a')]",
            "deep": "[json('[[[[[[[[1]]]]]]]]')]",
            "copy": [{"name": "c", "count": 3, "input": "[copyIndex('c')]"}]
        }),
        inline,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_expressions_never_panic_and_finish_quickly(e in expression(6)) {
        let doc = fuzz_deployment(&format!("[{e}]"));
        let start = Instant::now();
        let result = on_small_stack(move || {
            evaluate_deployment(&doc, &SuppliedParameters::default(), &ArmEnvironment::default())
                .map(|r| r.len())
                .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
        });
        prop_assert!(start.elapsed() < Duration::from_secs(5), "{e} took {:?}", start.elapsed());
        if let Err(errors) = result {
            for error in errors {
                prop_assert!(!error.contains("hunter2"), "{e} leaked the secret: {error}");
            }
        }
    }

    #[test]
    fn random_text_never_panics(s in "\\[[a-zA-Z(),'\\[\\]{}:0-9 .-]{0,60}\\]") {
        let doc = fuzz_deployment(&s);
        let _ = evaluate_deployment(&doc, &SuppliedParameters::default(), &ArmEnvironment::default());
    }
}
