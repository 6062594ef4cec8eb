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
