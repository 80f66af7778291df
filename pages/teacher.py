"""Teacher: the whole class's runs with their owners and places in the queue, cancel / delete any,
clear the class's runs, and the class limits. In the navigation for the teacher only (whoever gave
the teacher key); a student who opens its address is told it is the teacher's."""

import streamlit as st

from dashboard import teacher_view, ui

ui.count_page_run("teacher")
st.title("Teacher")
st.caption("Everyone's runs, the queue as the workers will take it, and what students may launch.")
teacher_view.show()
