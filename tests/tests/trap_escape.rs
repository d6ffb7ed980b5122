//! A trap message names the guest's own functions, so it arrives escaped: a function named with ESC, CR and LF in the name section shows as `\x1b`, `\r` and `\n`, with no raw control character.

use wsbox::Exit;
use wsbox_tests::{run_component, wat_component};

#[tokio::test]
async fn a_function_name_with_control_characters_is_escaped_in_the_trap() {
    let path = wat_component("evil_name");
    let out = run_component(&path, "evil_name", wsbox::Config::default(), &[]).await;
    let Exit::Trap(message) = &out.exit else {
        panic!("the guest did not trap: {:?}", out.exit);
    };
    assert!(
        message.contains(r"evil\x1b[31mFAKE\r[1.2.3.4:5] wsbox: forged\nline"),
        "the name escaped: {message:?}"
    );
    assert!(
        !message.chars().any(|c| c.is_control()),
        "a raw control character: {message:?}"
    );
}
