//! The test logger catches what it is for: wgpu error records fail the test that
//! produced them. Under the Khronos validation layer (`WGPU_VALIDATION=1 WGPU_DEBUG=1` on Vulkan) a
//! real layer message is provoked on a scratch device of this test's own; CI's
//! validation run sets `SEGLOSS_EXPECT_VALIDATION=1` so that this part cannot be skipped
//! there.

mod common;

use common::watch;

#[test]
fn an_error_record_of_wgpu_fails_the_test_that_made_it() {
    watch::install();
    watch::check();
    // What wgpu-hal's Vulkan debug callback does with a layer error (its target is its
    // module path), and a record of another crate, which is not wgpu's business.
    log::error!(target: "wgpu_hal::vulkan::instance", "VUID-test: provoked on purpose");
    log::error!(target: "someone_else", "not watched");
    let failed = std::panic::catch_unwind(watch::check);
    let message = failed
        .err()
        .and_then(|e| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(
        message.contains("VUID-test: provoked on purpose") && !message.contains("not watched"),
        "the checkpoint did not fail over the wgpu record: {message:?}"
    );
    // Claimed by the failed checkpoint: the next one passes.
    watch::check();
}

#[test]
fn the_validation_layer_reports_through_the_logger() {
    let expect = std::env::var_os("SEGLOSS_EXPECT_VALIDATION").is_some();
    let instance = common::instance();
    let validating = wgpu::InstanceFlags::from_build_config()
        .with_env()
        .contains(wgpu::InstanceFlags::VALIDATION);
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()));
    let vulkan = adapter
        .as_ref()
        .is_ok_and(|a| a.get_info().backend == wgpu::Backend::Vulkan);
    if !(validating && vulkan) {
        assert!(
            !expect,
            "SEGLOSS_EXPECT_VALIDATION is set, but this is not Vulkan with WGPU_VALIDATION"
        );
        eprintln!("not Vulkan under WGPU_VALIDATION: the layer part does not apply here");
        return;
    }
    let Ok(adapter) = adapter else { return };
    let (device, _queue) =
        pollster::block_on(adapter.request_device(&Default::default())).expect("a device");
    watch::check();
    // A zero-sized VkBuffer (VUID-VkBufferCreateInfo-size-00912): wgpu's own API cannot
    // express it, so the call goes to the raw device underneath.
    // SAFETY: the raw device outlives the guard; the buffer, if the driver makes one
    // despite the invalid size, is destroyed before the guard is dropped and was never
    // handed to wgpu.
    unsafe {
        let hal = device
            .as_hal::<wgpu::hal::api::Vulkan>()
            .expect("a Vulkan device");
        let raw = hal.raw_device();
        let info = ash::vk::BufferCreateInfo::default()
            .size(0)
            .usage(ash::vk::BufferUsageFlags::STORAGE_BUFFER);
        if let Ok(b) = raw.create_buffer(&info, None) {
            raw.destroy_buffer(b, None);
        }
    }
    let seen = watch::take_matching(|target, message| {
        target.starts_with("wgpu_hal") && message.contains("VUID-VkBufferCreateInfo-size")
    });
    // wgpu logs a message's object list as records of their own ("\tobjects: ...").
    watch::take_matching(|target, message| {
        target.starts_with("wgpu_hal") && message.starts_with('\t')
    });
    if seen == 0 {
        // The layer is not installed (`vulkan-validationlayers`): wgpu asked for it and
        // went on without it. (Or WGPU_DEBUG is unset: in a release build wgpu installs
        // its debug messenger only with InstanceFlags::DEBUG, and the layer then prints
        // to stdout, where no test sees it.)
        assert!(
            !expect,
            "no validation-layer message: is the layer installed, and WGPU_DEBUG=1 set?"
        );
        eprintln!("WGPU_VALIDATION set, but no layer answered: not installed here");
        return;
    }
    assert_eq!(seen, 1, "one message for one invalid call");
}
