//! The block-keeping allocator: a large block freed is handed back to the next
//! request of its layout, zeroed when asked for zeroed memory; small requests
//! and other sizes are untouched.

use tensor::memory::BlockCache;

#[global_allocator]
static ALLOCATOR: BlockCache = BlockCache::new();

#[test]
fn a_freed_large_block_is_reused_and_zeroed_on_request() {
    let n = BlockCache::THRESHOLD + 4096;
    let mut a = vec![7u8; n];
    a[n - 1] = 9;
    let first = a.as_ptr() as usize;
    drop(a);
    // the same layout, zeroed: the kept block, cleared
    let b = vec![0u8; n];
    assert_eq!(b.as_ptr() as usize, first, "the kept block is reused");
    assert!(
        b.iter().all(|&v| v == 0),
        "a reused block is zeroed for calloc"
    );
    drop(b);
    // a different size does not take it
    let c: Vec<u8> = Vec::with_capacity(n + 1);
    assert_ne!(c.as_ptr() as usize, first);
    drop(c);
    // small allocations still work as usual
    let small = vec![1u32; 100];
    assert_eq!(small.iter().sum::<u32>(), 100);
}

#[test]
fn zeroed_buffers_are_zero_even_where_freed_memory_held_other_values() {
    for n in [
        0,
        1,
        1000,
        (1 << 18) - 1,
        1 << 18,
        (1 << 18) + 12_345,
        3 << 20,
    ] {
        // Leave non-zero values in memory the allocator may hand back.
        drop(vec![7.5f32; n]);
        let z = tensor::memory::zeroed::<f32>(n);
        assert_eq!(z.len(), n);
        assert!(z.iter().all(|&v| v == 0.0), "n = {n}");
        let z = tensor::memory::zeroed::<f64>(n);
        assert!(z.len() == n && z.iter().all(|&v| v == 0.0), "f64, n = {n}");
    }
}
